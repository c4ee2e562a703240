/** The policy of the demo: stop an agent that loops, slow down one that bursts. */
export const RUNAWAY_GUARD = {
  name: 'runaway-guard',
  description: 'Stops agents that loop on the same prompt; slows down bursts of requests.',
  rules: [
    {
      id: 'agent-loop',
      description: 'the same prompt keeps coming back',
      condition: 'signals.repeated_prompts >= 3',
      action: 'stop_job',
      message: 'the job sent the same prompt 4 times within 5 minutes: it is looping',
    },
    {
      id: 'burst',
      description: 'too many requests in a minute',
      condition: 'signals.requests_per_minute >= 10',
      action: { type: 'throttle', delayMs: 300 },
      message: '10 or more requests within a minute: each further one waits 300 ms',
    },
  ],
} as const;

export type DemoRule = (typeof RUNAWAY_GUARD.rules)[number];

export function describeRule(r: DemoRule): string {
  const action = typeof r.action === 'string' ? r.action : `${r.action.type} ${r.action.delayMs} ms`;
  return `${r.id}: ${r.condition} → ${action}`;
}
