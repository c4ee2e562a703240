#!/usr/bin/env node
// `npm test`: every check and every test, on real engines that this script brings up itself.
// Steps run in order and stop at the first failure, saying which step failed.
import { spawnSync } from 'node:child_process';

const ENGINES = (process.env.FLOWLOOM_TEST_ENGINES ?? 'postgres redis kafka').split(/\s+/).filter(Boolean);
const env = {
  ...process.env,
  FLOWLOOM_TEST_PG_URL:
    process.env.FLOWLOOM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/flowloom_test',
  FLOWLOOM_TEST_REDIS_URL: process.env.FLOWLOOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  FLOWLOOM_TEST_KAFKA_BROKERS: process.env.FLOWLOOM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092',
  // Tests never need a real provider: they use the fakes in tests/fakes and the local provider.
  OPENAI_API_KEY: '',
  ANTHROPIC_API_KEY: '',
  GEMINI_API_KEY: '',
  AZURE_OPENAI_API_KEY: '',
};

const steps = [
  ['engines', 'bash', ['deploy/engines/up.sh', ...ENGINES]],
  // helm and kubernetes-validate for the chart checks; built once, then cached outside the repo.
  ['deploy tools', 'bash', ['deploy/tools.sh']],
  ['lint', 'npx', ['biome', 'check', '.']],
  ['import rules', 'node', ['scripts/check-imports.mjs']],
  ['typecheck', 'npx', ['tsc', '-b', 'tsconfig.json']],
  ['tests', 'npx', ['vitest', 'run', ...process.argv.slice(2)]],
];

for (const [name, command, args] of steps) {
  const started = Date.now();
  console.log(`\n▶ ${name}: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { stdio: 'inherit', env });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    console.error(
      `\n✖ ${name} failed after ${seconds}s (exit ${result.status ?? result.signal}). Fix it and run npm test again.`,
    );
    process.exit(result.status ?? 1);
  }
  console.log(`✔ ${name} (${seconds}s)`);
}
