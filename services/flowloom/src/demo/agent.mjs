// The scripted agent of `flowloom demo`: it drafts release notes step by step, calling a model through
// the OpenAI wire format at OPENAI_BASE_URL with OPENAI_API_KEY (set by `flowloom run`). Plain Node
// with no dependencies, so it starts in milliseconds.
//
// Attempt 1: three steps, then the issue tracker "times out" and the agent asks the same thing again
// and again: a runaway loop, until its own cap of DEMO_AGENT_MAX_TRIES. When FlowLoom refuses a request
// it waits for instructions; on SIGTERM it saves a checkpoint and exits.
// Attempt 2 and later (FLOWLOOM_ATTEMPT): it resumes from the checkpoint, the tracker answers (so it
// asks about the issues it got rather than repeating itself), and it finishes the remaining steps.

const env = process.env;
const base = env.OPENAI_BASE_URL;
const key = env.OPENAI_API_KEY;
const attempt = Number(env.FLOWLOOM_ATTEMPT ?? '1');
const maxTries = Number(env.DEMO_AGENT_MAX_TRIES ?? '6');
const pauseMs = Number(env.DEMO_AGENT_PAUSE_MS ?? '60');

const BEFORE = [
  'Collect the merged pull requests',
  'Group the changes by component',
  'Summarize the breaking changes',
];
const STUCK = 'Fetch the open issues from the tracker';
const AFTER = [
  'List the open issues that block the release',
  'Draft the highlights section',
  'Write the upgrade guide',
  'Check every link in the draft',
  'Format the notes as Markdown',
  'Open a pull request with the draft',
];

const log = (text) => process.stdout.write(`agent: ${text}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let step = 0;

process.on('SIGTERM', () => {
  log(`SIGTERM: saving a checkpoint at step ${step + 1} and exiting`);
  process.exit(143);
});

class Refused extends Error {}

async function ask(prompt) {
  const response = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'flowloom-local', messages: [{ role: 'user', content: prompt }] }),
  });
  const body = await response.json();
  if (response.status === 403 && body.error?.code === 'policy_blocked') throw new Refused(body.error.message);
  if (!response.ok) throw new Error(`${response.status}: ${body.error?.message ?? 'failed'}`);
  return body.choices?.[0]?.message?.content ?? '';
}

async function main() {
  if (!base || !key) {
    log('OPENAI_BASE_URL and OPENAI_API_KEY must be set (run me with flowloom run)');
    return 2;
  }
  try {
    if (attempt === 1) {
      for (const prompt of BEFORE) {
        log(`step ${step + 1}: ${prompt}`);
        await ask(prompt);
        step++;
        await sleep(pauseMs);
      }
      for (let tries = 1; tries <= maxTries; tries++) {
        log(`step ${step + 1}: ${STUCK} (try ${tries}: the tracker timed out, asking again)`);
        await ask(STUCK);
        await sleep(pauseMs);
      }
      log(`giving up on step ${step + 1} after ${maxTries} tries`);
      return 1;
    }
    step = BEFORE.length;
    log(`attempt ${attempt}: resuming from the checkpoint at step ${step + 1}`);
    for (const prompt of AFTER) {
      const started = Date.now();
      await ask(prompt);
      log(`step ${step + 1}: ${prompt} (${Date.now() - started} ms)`);
      step++;
    }
    log('release notes drafted');
    return 0;
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    log(`FlowLoom refused the request: ${error.message.split('. ')[0]}`);
    log('waiting for instructions');
    await sleep(30_000);
    return 1;
  }
}

process.exitCode = await main();
