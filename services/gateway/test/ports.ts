import { createServer } from 'node:net';

/**
 * A TCP port nothing listens on (bound, read, closed again): free to listen on, or refused when
 * connected to. The one copy for every test and benchmark (`@flowloom/gateway/testing/ports`); it
 * imports nothing else, so scripts that only start processes stay light.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close(() => reject(new Error('the server has no TCP address')));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
