import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { runDemo } from '../demo/scenario.js';

export const demoCommand: Command = {
  name: 'demo',
  summary:
    'The first minute, offline: a runaway agent flagged in shadow, stopped, restarted under a throttle',
  help: `Usage: flowloom demo   (or npm run demo)

Starts FlowLoom in this process on free ports with a throwaway data folder, and runs a scripted agent
on the offline \`local\` provider under \`flowloom run\` supervision, twice:
  1. with policy "runaway-guard" in shadow mode: the agent falls into a loop, FlowLoom flags it
     ("would stop_job") and changes nothing;
  2. with the policy promoted to enforce: the loop is stopped (SIGTERM), the job is restarted once
     and recovers under a throttle.
Each run ends with its timeline: every decision with its policy, version, rule and the values it read.
Needs no provider key and no network; leaves nothing behind. Exits 0 when all of this happened.`,
  async run(args, io) {
    parseArgs({ args, options: {}, strict: true });
    return runDemo({ out: io.out });
  },
};
