import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A checkpoint witness endpoint (audit.checkpointUrl) on a local port, recording what it gets. */
export interface TestWitness {
  /** The URL to give as audit.checkpointUrl. */
  readonly url: string;
  /** The checkpoints it accepted, in order. */
  readonly received: Array<{ treeSize: number; note: string }>;
  /** While true it answers 500 and keeps nothing, as a witness that is down. */
  failing: boolean;
  close(): Promise<void>;
}

export async function startWitness(): Promise<TestWitness> {
  const server = createServer((request, response) => {
    let note = '';
    request.on('data', (chunk: Buffer) => {
      note += chunk.toString('utf8');
    });
    request.on('end', () => {
      if (witness.failing) {
        response.writeHead(500).end();
        return;
      }
      witness.received.push({ treeSize: Number(request.headers['x-flowloom-tree-size']), note });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const witness: TestWitness = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/checkpoints`,
    received: [],
    failing: false,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return witness;
}
