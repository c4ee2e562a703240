import { describe, expect, it } from 'vitest';
import { type ReplayRecord, replayDecisions } from './replay.js';
import { policyFrom, rulesYaml } from './test-support.js';

// Records rebuilt from request events (no decision was recorded) name what they cannot know.

const empty = policyFrom('name: empty\nrules: []\n');
const candidate = policyFrom(
  rulesYaml(
    `{ id: premium, condition: 'request.model == "big"', action: block }`,
    `{ id: red-team, condition: 'request.headers["x-team"] == "red"', action: alert }`,
    `{ id: long, condition: 'request.max_tokens > 1000', action: block }`,
  ),
);

describe('replayDecisions: records with known missing inputs', () => {
  const rebuilt: ReplayRecord[] = [
    {
      id: 'a',
      input: { request: { model: 'big' } },
      missing: ['request.headers', 'request.max_tokens', 'signals'],
    },
    {
      id: 'b',
      input: { request: { model: 'small' } },
      missing: ['request.headers', 'request.max_tokens', 'signals'],
    },
    // A decision's own record: the headers were not gathered (no policy read them), max_tokens was.
    { id: 'c', input: { request: { model: 'small', max_tokens: 10 } } },
  ];

  it('when a version reads what a record lacks, then the path is counted as missing for it, prefixes included', () => {
    const report = replayDecisions(rebuilt, empty, candidate);
    expect(report).toMatchObject({ total: 3, changed: 1 });
    expect(report.missingInputs).toEqual({
      decisions: 3,
      paths: [
        { path: 'request.headers["x-team"]', decisions: 3, readBy: ['candidate'] },
        { path: 'request.max_tokens', decisions: 2, readBy: ['candidate'] },
      ],
    });
  });

  it('when no version reads what a record lacks, then nothing is missing', () => {
    const modelOnly = policyFrom(
      rulesYaml(`{ id: premium, condition: 'request.model == "big"', action: block }`),
    );
    const report = replayDecisions(rebuilt.slice(0, 2), empty, modelOnly);
    expect(report.missingInputs).toEqual({ decisions: 0, paths: [] });
    expect(report.changed).toBe(1);
  });
});
