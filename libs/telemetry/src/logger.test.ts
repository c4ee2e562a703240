import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, scrubSecrets } from './logger.js';

describe('logger', () => {
  it('when a line carries credentials in known fields, then they are redacted', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger({ service: 'test', destination });
    log.info(
      { headers: { authorization: 'Bearer flk_abcdefghijklmnopqrstuvwxyz', 'x-api-key': 'k' }, apiKey: 's' },
      'hi',
    );
    const line = lines.join('');
    expect(line).toContain('"service":"test"');
    expect(line).not.toContain('flk_abc');
    expect(line).not.toContain('"k"');
    expect(line).toContain('[redacted]');
  });

  it('when free text contains keys, then scrubSecrets masks them', () => {
    const text =
      'bad key sk-proj-ABCDEFGHIJKLMNOPQRSTUV and Bearer abcdefghijklmnopqr and postgres://u:pw@h/db';
    const scrubbed = scrubSecrets(text);
    expect(scrubbed).not.toContain('ABCDEFGHIJKLMNOP');
    expect(scrubbed).not.toContain('abcdefghijklmnopqr');
    expect(scrubbed).not.toContain(':pw@');
    expect(scrubbed).toContain('Bearer [redacted]');
  });
});
