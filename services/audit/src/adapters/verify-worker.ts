import { Worker } from 'node:worker_threads';
import type { TreeCheckerFactory, TreeCheckResult } from '../app/verify-log.js';

// Verification's CPU work on a worker thread, so that it runs while the main thread reads the next
// page from the database (PGlite runs on the main thread): leaf hashing of bundle lines, and
// recomputing the tree from the node tiles. Plain JavaScript evaluated in the worker (no TypeScript
// loader needed there); the same algorithms as the in-thread hashLinesHere / checkTreeHere, which
// the tests compare it with.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
const PREFIX = '{"$pruned":"';
const HEX64 = /^[0-9a-f]{64}$/;
const EMPTY = hash('sha256', Buffer.alloc(0), 'buffer');
const nodeInput = Buffer.alloc(65);
nodeInput[0] = 1;
let scratch = Buffer.alloc(1 << 16);

function nodeHash(left, right) {
  nodeInput.set(left, 1);
  nodeInput.set(right, 33);
  return hash('sha256', nodeInput, 'buffer');
}
function popcount(x) { let n = 0; while (x > 0) { n += x % 2; x = Math.floor(x / 2); } return n; }
function nodesBefore(leaves) { return 2 * leaves - popcount(leaves); }

function hashLines(lines) {
  const out = Buffer.allocUnsafe(lines.length * 32);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.length === PREFIX.length + 66 && line.startsWith(PREFIX) && line.endsWith('"}')) {
      const hex = line.slice(PREFIX.length, -2);
      if (HEX64.test(hex)) { out.write(hex, i * 32, 'hex'); continue; }
    }
    const need = Buffer.byteLength(line, 'utf8') + 1;
    if (need > scratch.length) scratch = Buffer.alloc(Math.max(need, scratch.length * 2));
    scratch[0] = 0;
    scratch.write(line, 1, 'utf8');
    out.set(hash('sha256', scratch.subarray(0, need), 'buffer'), i * 32);
  }
  return out;
}

let tree = null;
function root() {
  const stack = tree.stack;
  if (stack.length === 0) return EMPTY;
  let acc = stack[stack.length - 1];
  for (let j = stack.length - 2; j >= 0; j--) acc = nodeHash(stack[j], acc);
  return acc;
}
function settle() {
  while (tree.next < tree.anchors.length) {
    const anchor = tree.anchors[tree.next];
    if (anchor.size > tree.size) return;
    if (anchor.size === tree.size) tree.matches[tree.next] = Buffer.compare(root(), anchor.root) === 0;
    tree.next++;
  }
}
function treeTile(startSize, endSize, bytes) {
  if (tree.stopped || endSize <= tree.size) return;
  if (startSize !== tree.size) {
    tree.problem = tree.problem || 'the node store has a gap or overlap at leaf ' + tree.size + ' (a tile starts at ' + startSize + ')';
    tree.stopped = true;
    return;
  }
  const expected = (nodesBefore(endSize) - nodesBefore(startSize)) * 32;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length !== expected) {
    tree.problem = tree.problem || 'the node tile for leaves ' + startSize + '..' + (endSize - 1) + ' holds ' + buf.length + ' bytes, not ' + expected;
    return;
  }
  let offset = 0;
  let bad = false;
  for (let leaf = startSize; leaf < endSize; leaf++) {
    const leafHash = Buffer.from(buf.subarray(offset, offset + 32));
    if ((tree.size + 1) * 32 > tree.leaves.length) {
      const grown = Buffer.allocUnsafe(tree.leaves.length * 2);
      tree.leaves.copy(grown, 0, 0, tree.size * 32);
      tree.leaves = grown;
    }
    tree.leaves.set(leafHash, tree.size * 32);
    offset += 32;
    let h = leafHash;
    let level = 0;
    let index = tree.size;
    while (tree.levels.length > 0 && tree.levels[tree.levels.length - 1] === level) {
      tree.levels.pop();
      h = nodeHash(tree.stack.pop(), h);
      level++;
      index = Math.floor(index / 2);
      if (!bad && buf.compare(h, 0, 32, offset, offset + 32) !== 0) {
        bad = true;
        tree.problem = tree.problem || 'stored node (level ' + level + ', index ' + index + ') is not the hash of its children: proofs served from it would not verify';
      }
      offset += 32;
    }
    tree.stack.push(h);
    tree.levels.push(level);
    tree.size++;
    settle();
  }
}

parentPort.on('message', (message) => {
  switch (message.type) {
    case 'hash': {
      const hashes = hashLines(message.lines);
      parentPort.postMessage({ id: message.id, hashes }, [hashes.buffer]);
      return;
    }
    case 'tree-start':
      tree = {
        anchors: message.anchors.map((a) => ({ size: a.size, root: Buffer.from(a.root) })),
        matches: message.anchors.map(() => undefined),
        next: 0, stack: [], levels: [], size: 0, leaves: Buffer.allocUnsafe(1 << 20), problem: undefined, stopped: false,
      };
      settle();
      return;
    case 'tree-tile':
      treeTile(message.startSize, message.endSize, message.hashes);
      return;
    case 'tree-finish': {
      const leaves = Buffer.from(tree.leaves.subarray(0, tree.size * 32));
      parentPort.postMessage({ id: message.id, leaves, matches: tree.matches, problem: tree.problem }, [leaves.buffer]);
      tree = null;
      return;
    }
  }
});
`;

export interface VerifyWorker {
  /** Leaf hashes of bundle lines, packed (a pruned marker gives the hash it declares). */
  hashLines(lines: readonly string[]): Promise<Uint8Array>;
  /** The tree check, fed tile by tile (one verification at a time). */
  readonly treeChecker: TreeCheckerFactory;
  close(): Promise<void>;
}

/** One worker thread: verification is reading plus hashing, and one more core is what helps. */
export function createVerifyWorker(): VerifyWorker {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.unref();
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (e: unknown) => void }>();
  let next = 0;
  worker.on('message', (message: { id: number }) => {
    pending.get(message.id)?.resolve(message);
    pending.delete(message.id);
  });
  worker.on('error', (error) => {
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  });
  const request = <T>(message: Record<string, unknown>): Promise<T> => {
    const id = next++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ ...message, id });
    });
  };
  return {
    async hashLines(lines) {
      const { hashes } = await request<{ hashes: Uint8Array }>({ type: 'hash', lines });
      return new Uint8Array(hashes.buffer, hashes.byteOffset, hashes.byteLength);
    },
    treeChecker(anchors) {
      worker.postMessage({
        type: 'tree-start',
        anchors: anchors.map((a) => ({ size: a.size, root: a.root })),
      });
      return {
        push(tile) {
          worker.postMessage({
            type: 'tree-tile',
            startSize: tile.startSize,
            endSize: tile.endSize,
            hashes: tile.hashes,
          });
        },
        async finish(): Promise<TreeCheckResult> {
          const result = await request<{
            leaves: Uint8Array;
            matches: Array<boolean | undefined | null>;
            problem?: string;
          }>({ type: 'tree-finish' });
          return {
            leaves: new Uint8Array(result.leaves.buffer, result.leaves.byteOffset, result.leaves.byteLength),
            matches: result.matches.map((m) => (m === null ? undefined : m)),
            problem: result.problem,
          };
        },
      };
    },
    async close() {
      await worker.terminate();
    },
  };
}
