import { describe, expect, it } from 'vitest';
import { JOB_POLICY_FORBIDDEN_ACTIONS } from '../evaluate/compile-policy.js';
import { compilePolicy, loadPolicy } from './load.js';

const SOURCE = `name: job-guard
rules:
  - id: cheap
    condition: request.model == "big"
    action: { type: reroute, model: small }
  - id: loops
    condition: signals.repeated_prompts >= 3
    action: stop_job
`;

describe('forbidden actions (job policies)', () => {
  it('when a job policy reroutes, then it is refused with the line of the action and why', () => {
    const result = loadPolicy(SOURCE, {
      filename: 'job.yaml',
      forbiddenActions: JOB_POLICY_FORBIDDEN_ACTIONS,
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ file: 'job.yaml', line: 5, path: 'rules[0].action' });
    expect(result.errors[0]?.message).toContain(
      'action "reroute" is not allowed here: a job policy may only add restrictions',
    );
  });

  it('when nothing is forbidden, then the same policy compiles', () => {
    expect(loadPolicy(SOURCE).ok).toBe(true);
  });

  it('when a job policy only restricts, then it compiles with the option', () => {
    const result = compilePolicy(
      { name: 'p', rules: [{ id: 'r', condition: 'request.estimated_tokens > 10', action: 'block' }] },
      { forbiddenActions: JOB_POLICY_FORBIDDEN_ACTIONS },
    );
    expect(result.ok).toBe(true);
  });
});
