// The benchmark's mock OpenAI upstream, in a process of its own: `tsx tests/bench/mock-upstream.ts PORT`.
import { startFakeProvider } from '../fakes/index.js';

const port = Number(process.argv[2] ?? 0);
const fake = await startFakeProvider({ kind: 'openai', port, maxRecorded: 0 });
fake.setDefault({
  kind: 'reply',
  text: 'The quick brown fox jumps over the lazy dog.',
  usage: { input: 12, output: 10 },
});
process.stdout.write(`listening ${fake.port}\n`);
process.on('SIGTERM', () => void fake.close().then(() => process.exit(0)));
