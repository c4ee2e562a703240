import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Fields that may carry secrets anywhere in a log line. Redaction is a backstop: code must not log
 * secrets in the first place, but a stray header dump must not leak a key either.
 */
const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  '*.*.authorization',
  'x-api-key',
  '*["x-api-key"]',
  '*.*["x-api-key"]',
  'api-key',
  '*["api-key"]',
  '*.*["api-key"]',
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'password',
  '*.password',
  'token',
  '*.token',
  'secret',
  '*.secret',
];

export interface LoggerOptions {
  level?: string;
  service: string;
  /** Where to write; stdout by default. Tests pass a stream to read the lines back. */
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

const SECRET_PATTERNS: RegExp[] = [
  /\bflk_[A-Za-z0-9_-]{20,}/g,
  /\bsk-[A-Za-z0-9_-]{16,}/g,
  /\bsk-ant-[A-Za-z0-9_-]{16,}/g,
  /\bAIza[0-9A-Za-z_-]{30,}/g,
  /(Bearer\s+)[A-Za-z0-9._~+/-]{12,}=*/gi,
  /(postgres(?:ql)?:\/\/[^:/\s]+:)[^@\s]+@/gi,
];

/** Masks anything that looks like a credential in free text (upstream error messages, exceptions). */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (_match, prefix: unknown) =>
      typeof prefix === 'string' ? `${prefix}[redacted]` : '[redacted]',
    );
  }
  return out;
}
