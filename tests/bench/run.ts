// `npm run bench [-- gateway distributed ledger policy]`: prints figures and ratios measured side by side in one
// run. Nothing here passes or fails on time: machines are shared and noisy, so compare ratios.
import { runAuditBench } from './audit.bench.js';
import { runDistributedBench } from './distributed.bench.js';
import { runGatewayBench } from './gateway.bench.js';
import { runLedgerBench } from './ledger.bench.js';
import { runPolicyBench } from './policy.bench.js';
import { runPolicyGatewayBench } from './policy-gateway.bench.js';

interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

const log = (line: string): void => {
  process.stderr.write(`… ${line}\n`);
};

const suites: Record<string, () => Promise<Figure[]>> = {
  gateway: () => runGatewayBench(log, Number(process.env.BENCH_SECONDS ?? 10)),
  distributed: () => runDistributedBench(log, Number(process.env.BENCH_SECONDS ?? 10)),
  policy: () => runPolicyBench(),
  'policy-gateway': () => runPolicyGatewayBench(log),
  ledger: () => runLedgerBench(),
  audit: () => runAuditBench(),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : Object.keys(suites);
const unknown = names.filter((n) => !suites[n]);
if (unknown.length > 0) {
  console.error(
    `unknown bench suite(s): ${unknown.join(', ')}; choose from ${Object.keys(suites).join(', ')}`,
  );
  process.exit(2);
}

const all: Array<Figure & { suite: string }> = [];
for (const name of names) {
  log(`suite ${name}`);
  const figures = await suites[name]!();
  for (const f of figures) all.push({ suite: name, ...f });
}

const width = Math.max(...all.map((f) => f.name.length));
console.log(
  `\nFlowLoom benchmark — ${new Date().toISOString()} — node ${process.version}, ${(await import('node:os')).cpus().length} cores\n`,
);
for (const f of all) {
  console.log(
    `${f.suite.padEnd(8)} ${f.name.padEnd(width)}  ${String(f.value).padStart(12)} ${f.unit.padEnd(8)} ${f.note ?? ''}`,
  );
}
if (process.env.BENCH_JSON) console.log(JSON.stringify(all, null, 2));
