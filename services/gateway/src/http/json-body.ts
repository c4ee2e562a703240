import { AppError } from '@flowloom/errors';
import type { FastifyInstance } from 'fastify';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Parses JSON bodies strictly: invalid UTF-8 is refused rather than silently replaced with U+FFFD,
 * and a body that is not JSON says where it broke.
 */
export function registerJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    /^application\/([a-z.+-]+\+)?json\s*(;|$)/i,
    { parseAs: 'buffer' },
    (_req, body: Buffer, done) => {
      let text: string;
      try {
        text = utf8.decode(body);
      } catch {
        done(new AppError('invalid_utf8', 'The request body is not valid UTF-8.'), undefined);
        return;
      }
      if (text.trim() === '') {
        done(new AppError('invalid_json', 'The request body is empty; send a JSON object.'), undefined);
        return;
      }
      try {
        done(null, JSON.parse(text));
      } catch (error) {
        done(
          new AppError('invalid_json', `The request body is not valid JSON: ${(error as Error).message}`),
          undefined,
        );
      }
    },
  );
}
