import { createHash } from 'node:crypto';
import type { PolicyDocument } from './document/schema.js';

/**
 * RFC 8785 (JCS) canonical JSON: keys sorted by UTF-16 code units, no whitespace, ECMAScript
 * number and string serialization. The same policy gives the same bytes whatever its key order,
 * format (YAML or JSON), comments or spelled-out defaults.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot represent a non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const members = Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`);
    return `{${members.join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot represent a ${typeof value}`);
}

/** A policy version id: hex SHA-256 of the canonical normalized document (64 characters). */
export function policyVersionId(document: PolicyDocument): string {
  return createHash('sha256').update(canonicalJson(document), 'utf8').digest('hex');
}
