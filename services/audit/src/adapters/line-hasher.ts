import { Worker } from 'node:worker_threads';

// Leaf hashing of bundle lines in a worker thread, so that verification hashes one page while the
// main thread reads the next one from the database (PGlite runs on the main thread). Plain
// JavaScript, evaluated in the worker: it needs no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
const PREFIX = '{"$pruned":"';
let scratch = Buffer.alloc(1 << 16);
parentPort.on('message', ({ id, lines }) => {
  const out = Buffer.allocUnsafe(lines.length * 32);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.length === PREFIX.length + 66 && line.startsWith(PREFIX) && line.endsWith('"}')) {
      const hex = line.slice(PREFIX.length, -2);
      if (/^[0-9a-f]{64}$/.test(hex)) {
        out.write(hex, i * 32, 'hex');
        continue;
      }
    }
    const need = Buffer.byteLength(line, 'utf8') + 1;
    if (need > scratch.length) scratch = Buffer.alloc(Math.max(need, scratch.length * 2));
    scratch[0] = 0;
    scratch.write(line, 1, 'utf8');
    out.set(hash('sha256', scratch.subarray(0, need), 'buffer'), i * 32);
  }
  parentPort.postMessage({ id, hashes: out }, [out.buffer]);
});
`;

export interface LineHasher {
  /** Leaf hashes of bundle lines, packed (a pruned marker gives the hash it declares). */
  hashLines(lines: readonly string[]): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A hasher on one worker thread (verification is I/O + hashing: one extra core is what helps). */
export function createLineHasher(): LineHasher {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.unref();
  const pending = new Map<number, { resolve: (h: Uint8Array) => void; reject: (e: unknown) => void }>();
  let next = 0;
  worker.on('message', ({ id, hashes }: { id: number; hashes: Uint8Array }) => {
    pending.get(id)?.resolve(new Uint8Array(hashes.buffer, hashes.byteOffset, hashes.byteLength));
    pending.delete(id);
  });
  worker.on('error', (error) => {
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  });
  return {
    hashLines(lines) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, lines });
      });
    },
    async close() {
      await worker.terminate();
    },
  };
}
