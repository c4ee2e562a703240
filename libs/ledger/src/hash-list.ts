import { HASH_SIZE } from './hash.js';

/**
 * An append-only list of 32-byte hashes packed into one buffer: a million leaf hashes cost 32 MB
 * in one allocation instead of a million Buffer objects.
 */
export class HashList {
  private buffer: Buffer;
  private count = 0;

  constructor(capacity = 1024) {
    this.buffer = Buffer.allocUnsafe(Math.max(1, capacity) * HASH_SIZE);
  }

  /** Wraps packed hashes (length a multiple of 32) without copying. */
  static wrap(packed: Uint8Array): HashList {
    const list = new HashList(0);
    list.buffer = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
    list.count = Math.floor(packed.byteLength / HASH_SIZE);
    return list;
  }

  get length(): number {
    return this.count;
  }

  push(hash: Uint8Array): void {
    if ((this.count + 1) * HASH_SIZE > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, HASH_SIZE * 1024));
      this.buffer.copy(grown, 0, 0, this.count * HASH_SIZE);
      this.buffer = grown;
    }
    this.buffer.set(hash, this.count * HASH_SIZE);
    this.count++;
  }

  /** Appends packed hashes (a multiple of 32 bytes) in one copy. */
  pushPacked(packed: Uint8Array): void {
    const needed = this.count * HASH_SIZE + packed.length;
    if (needed > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, needed, HASH_SIZE * 1024));
      this.buffer.copy(grown, 0, 0, this.count * HASH_SIZE);
      this.buffer = grown;
    }
    this.buffer.set(packed, this.count * HASH_SIZE);
    this.count += Math.floor(packed.length / HASH_SIZE);
  }

  /** A view of hash i; valid until the next push. */
  at(i: number): Uint8Array {
    return this.buffer.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }

  /** First index ≥ `from` holding `hash`, or undefined. */
  indexOf(hash: Uint8Array, from = 0): number | undefined {
    for (let j = from; j < this.count; j++) {
      if (this.buffer.compare(hash, 0, HASH_SIZE, j * HASH_SIZE, (j + 1) * HASH_SIZE) === 0) return j;
    }
    return undefined;
  }

  equalAt(i: number, other: HashList, j: number): boolean {
    return (
      this.buffer.compare(
        other.buffer,
        j * HASH_SIZE,
        (j + 1) * HASH_SIZE,
        i * HASH_SIZE,
        (i + 1) * HASH_SIZE,
      ) === 0
    );
  }

  /**
   * How many leading hashes this list shares with `other`: a million-entry log is compared in
   * large native blocks, then hash by hash only inside the first block that differs.
   */
  commonPrefix(other: HashList): number {
    const common = Math.min(this.count, other.count);
    const block = 4096;
    let i = 0;
    while (i < common) {
      const end = Math.min(common, i + block) * HASH_SIZE;
      if (this.buffer.compare(other.buffer, i * HASH_SIZE, end, i * HASH_SIZE, end) !== 0) break;
      i = end / HASH_SIZE;
    }
    while (i < common && this.equalAt(i, other, i)) i++;
    return i;
  }

  /** Same hashes in the same order. */
  equals(other: HashList): boolean {
    return (
      this.count === other.count &&
      this.buffer.compare(other.buffer, 0, other.count * HASH_SIZE, 0, this.count * HASH_SIZE) === 0
    );
  }

  packed(): Uint8Array {
    return this.buffer.subarray(0, this.count * HASH_SIZE);
  }
}
