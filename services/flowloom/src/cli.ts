import type { Command, Io } from './command.js';
import { UsageError } from './command.js';
import { auditCommand } from './commands/audit.js';
import { demoCommand } from './commands/demo.js';
import { keysCommand } from './commands/keys.js';
import { migrateCommand } from './commands/migrate.js';
import { outboxCommand } from './commands/outbox.js';
import { policyCommand } from './commands/policy.js';
import { reportCommand } from './commands/report.js';
import { runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';
import { upCommand } from './commands/up.js';

const commands: Command[] = [
  upCommand,
  serveCommand,
  keysCommand,
  policyCommand,
  runCommand,
  demoCommand,
  migrateCommand,
  auditCommand,
  reportCommand,
  outboxCommand,
];

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'FlowLoom: the governed AI gateway.',
    '',
    'Usage: flowloom <command> [options]    (flowloom <command> --help for details)',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Environment: FLOWLOOM_URL and FLOWLOOM_API_KEY reach a running platform.',
  ].join('\n');
}

const stdio: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
};

/**
 * The part of a command's help about one of its subcommands (`flowloom keys resume --help`): each
 * usage line `  flowloom <command> <sub>…` with the more indented lines under it, then the prose
 * paragraphs that name it. Undefined when the help has no such line (then the whole help is shown).
 */
export function subcommandHelp(command: Command, sub: string | undefined): string | undefined {
  if (sub === undefined || sub.startsWith('-')) return undefined;
  const usage = `  flowloom ${command.name} ${sub}`;
  const picked: string[] = [];
  let inside = false;
  for (const line of command.help.split('\n')) {
    if (line.startsWith('  flowloom ')) inside = line === usage || line.startsWith(`${usage} `);
    else if (!line.startsWith('   ')) inside = false;
    if (inside) picked.push(line);
  }
  if (picked.length === 0) return undefined;
  const named = new RegExp(`\\b${command.name} ${sub}\\b`);
  const prose = command.help
    .split(/\n\s*\n/)
    .filter((paragraph) => !paragraph.startsWith('  ') && named.test(paragraph));
  return [
    ...picked,
    ...prose.flatMap((p) => ['', p]),
    '',
    `(flowloom ${command.name} --help describes the whole command)`,
  ].join('\n');
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(overview());
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`flowloom: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  // Flags after `--` belong to a supervised command (flowloom run -- grep -h x), not to us.
  const ours = args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
  if (ours.includes('--help') || ours.includes('-h')) {
    io.out(subcommandHelp(command, ours[0]) ?? command.help);
    return 0;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`flowloom ${name}: ${(error as Error).message}\n\n${command.help}`);
      return 2;
    }
    io.err(`flowloom ${name}: ${(error as Error).message}`);
    return 1;
  }
}
