import { describe, expect, it } from 'vitest';
import type { RedactAction } from '../document/actions.js';
import { redactText } from './redact.js';

const action = (patterns: RedactAction['patterns'], replacement = '[REDACTED]'): RedactAction => ({
  type: 'redact',
  patterns,
  replacement,
});

describe('redactText', () => {
  it('when a prompt contains e-mail addresses, then they are replaced', () => {
    expect(redactText('write to ann.lee+x@mail.example.co.uk today', [action(['email'])])).toEqual({
      text: 'write to [REDACTED] today',
      count: 1,
    });
  });

  it('when digits look like a card, then only Luhn-valid numbers are redacted', () => {
    const out = redactText('card 4111 1111 1111 1111, order 1234 5678 9012 3456', [
      action(['credit_card'], '#'),
    ]);
    expect(out).toEqual({ text: 'card #, order 1234 5678 9012 3456', count: 1 });
  });

  it('when secrets of known shapes appear, then each is redacted', () => {
    const text = [
      'sk-proj-abcdefghijklmnopqrstuvwx',
      'AKIAIOSFODNN7EXAMPLE',
      `ghp_${'a'.repeat(36)}`,
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    ].join(' and ');
    expect(redactText(text, [action(['api_key'], 'X')])).toEqual({ text: 'X and X and X and X', count: 4 });
  });

  it('when ipv4 and us_ssn patterns are used, then only valid forms match', () => {
    const out = redactText('host 10.0.0.255 not 300.1.1.1, ssn 123-45-6789 not 000-12-3456', [
      action(['ipv4', 'us_ssn'], '*'),
    ]);
    expect(out.text).toBe('host * not 300.1.1.1, ssn * not 000-12-3456');
  });

  it('when a custom pattern with flags is given, then it applies case-insensitively', () => {
    expect(
      redactText('Project APOLLO and apollo', [action([{ regex: 'apollo', flags: 'i' }], '***')]),
    ).toEqual({
      text: 'Project *** and ***',
      count: 2,
    });
  });

  it('when a prompt is long and has no match, then the built-in patterns still finish quickly', () => {
    const hostile = `${'a'.repeat(200_000)}@`;
    const started = performance.now();
    redactText(hostile, [action(['email', 'credit_card', 'api_key', 'ipv4', 'us_ssn'])]);
    // Bounded quantifiers keep this linear; a quadratic pattern would take tens of seconds here.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
