import { createHash } from 'node:crypto';
import type { EvaluationInput } from './input.js';

/**
 * How a policy version is rolled out. The mode belongs to the deployment of a version, not to its
 * content, so it is an evaluation option and never part of the version hash.
 */
export type Rollout =
  | { readonly mode: 'enforce' }
  | { readonly mode: 'shadow' }
  /** Enforced for `percent` (0-100, two decimals) of subjects; `by` defaults to job. */
  | { readonly mode: 'canary'; readonly percent: number; readonly by?: 'job' | 'key' };
export type RolloutMode = Rollout['mode'];

export const CANARY_BUCKETS = 10_000;

/** First 4 bytes (big-endian) of SHA-256(policyVersion ‖ subject), mod 10,000. */
export function canaryBucket(policyVersion: string, subject: string): number {
  const digest = createHash('sha256').update(policyVersion, 'utf8').update(subject, 'utf8').digest();
  return digest.readUInt32BE(0) % CANARY_BUCKETS;
}

export interface CanaryAssignment {
  readonly subject: string;
  /** `key` when bucketing by key, or by job for a request that carries no job id. */
  readonly subjectKind: 'job' | 'key';
  readonly bucket: number;
  readonly percent: number;
  readonly enforced: boolean;
}

const MAX_MEMO_SUBJECTS = 10_000;

/**
 * Buckets of one policy version by subject. Jobs and keys recur across requests, and a bucket never
 * changes for a version, so this saves a SHA-256 per decision; bounded, cleared when full.
 */
export class BucketMemo {
  private readonly buckets = new Map<string, number>();
  constructor(private readonly policyVersion: string) {}

  bucketOf(subject: string): number {
    let bucket = this.buckets.get(subject);
    if (bucket === undefined) {
      bucket = canaryBucket(this.policyVersion, subject);
      if (this.buckets.size >= MAX_MEMO_SUBJECTS) this.buckets.clear();
      this.buckets.set(subject, bucket);
    }
    return bucket;
  }
}

export function assignCanary(
  policyVersion: string,
  rollout: Extract<Rollout, { mode: 'canary' }>,
  input: EvaluationInput,
  memo?: BucketMemo,
): CanaryAssignment {
  const { percent } = rollout;
  if (!(percent >= 0 && percent <= 100))
    throw new RangeError(`canary percent must be within 0..100, got ${percent}`);
  const job = rollout.by === 'key' ? undefined : input.request?.job;
  const subjectKind = job === undefined || job === '' ? 'key' : 'job';
  const subject = subjectKind === 'job' ? (job ?? '') : (input.caller?.key_id ?? input.request?.key ?? '');
  const bucket = memo === undefined ? canaryBucket(policyVersion, subject) : memo.bucketOf(subject);
  // Basis points: bucket < 2500 is exactly 25% of the bucket space.
  const enforced = bucket < Math.round(percent * 100);
  return { subject, subjectKind, bucket, percent, enforced };
}
