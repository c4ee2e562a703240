/**
 * Named redaction patterns. Quantifiers are bounded so a long prompt cannot make a pattern
 * backtrack quadratically (prompts are caller-controlled).
 */
export const BUILTIN_PATTERN_NAMES = ['email', 'credit_card', 'api_key', 'ipv4', 'us_ssn'] as const;
export type BuiltinPatternName = (typeof BUILTIN_PATTERN_NAMES)[number];

export interface BuiltinPattern {
  readonly regex: RegExp;
  /** A second check on each match, to keep false positives (e.g. order numbers) unredacted. */
  readonly accept?: (match: string) => boolean;
}

const API_KEY_SHAPES = [
  'sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,200}', // OpenAI, Anthropic
  'AKIA[0-9A-Z]{16}', // AWS access key id
  'gh[pousr]_[A-Za-z0-9]{36,255}', // GitHub
  'glpat-[A-Za-z0-9_-]{20,100}', // GitLab
  'xox[abprs]-[A-Za-z0-9-]{10,200}', // Slack
  'AIza[0-9A-Za-z_-]{35}', // Google
  'eyJ[A-Za-z0-9_-]{8,2000}\\.[A-Za-z0-9_-]{8,4000}\\.[A-Za-z0-9_-]{8,2000}', // JWT
];

export const BUILTIN_PATTERNS: Readonly<Record<BuiltinPatternName, BuiltinPattern>> = {
  email: {
    regex: /\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b/g,
  },
  credit_card: { regex: /\b\d(?:[ -]?\d){12,18}\b/g, accept: luhnValid },
  api_key: { regex: new RegExp(`\\b(?:${API_KEY_SHAPES.join('|')})\\b`, 'g') },
  ipv4: { regex: /\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b/g },
  us_ssn: { regex: /\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b/g },
};

function luhnValid(candidate: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = candidate.length - 1; i >= 0; i--) {
    const c = candidate.charCodeAt(i);
    if (c < 48 || c > 57) continue;
    let d = c - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}
