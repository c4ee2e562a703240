import { z } from 'zod';

/**
 * What the policy service distributes to gateways: for each policy, the enforced (stable) version and
 * optionally a candidate rolled out in shadow or canary. Documents travel normalized; a gateway
 * compiles them itself and checks each against its content-hash version id.
 */
export const bundleVersionSchema = z.object({
  version: z.string().regex(/^[0-9a-f]{64}$/, 'a policy version id (64 hex characters)'),
  document: z.unknown(),
});
export type BundleVersion = z.infer<typeof bundleVersionSchema>;

export const bundleCandidateSchema = bundleVersionSchema.extend({
  mode: z.enum(['shadow', 'canary']),
  /** Canary: the share of jobs (or keys) enforced, 0-100. */
  percent: z.number().min(0).max(100).optional(),
  by: z.enum(['job', 'key']).optional(),
});
export type BundleCandidate = z.infer<typeof bundleCandidateSchema>;

export const bundlePolicySchema = z.object({
  name: z.string().min(1),
  stable: bundleVersionSchema.optional(),
  candidate: bundleCandidateSchema.optional(),
});
export type BundlePolicy = z.infer<typeof bundlePolicySchema>;

export const policyBundleSchema = z.object({
  /** Grows with every change; a gateway ignores a bundle older than the one it has. */
  revision: z.number().int().nonnegative(),
  policies: z.array(bundlePolicySchema),
});
export type PolicyBundle = z.infer<typeof policyBundleSchema>;

/** A bundle as `flowloom.policy.v1.PolicyBundle` (proto-loader, camelCase fields, longs as numbers). */
export interface PolicyBundleWire {
  revision: number;
  policies: Array<{ name: string; stable?: BundleVersionWire | null; candidate?: BundleVersionWire | null }>;
}

export interface BundleVersionWire {
  version: string;
  documentJson: string;
  mode: string;
  percent: number;
  by: string;
}

export function bundleToWire(bundle: PolicyBundle): PolicyBundleWire {
  return {
    revision: bundle.revision,
    policies: bundle.policies.map((p) => ({
      name: p.name,
      ...(p.stable
        ? {
            stable: {
              version: p.stable.version,
              documentJson: JSON.stringify(p.stable.document),
              mode: 'enforce',
              percent: 0,
              by: '',
            },
          }
        : {}),
      ...(p.candidate
        ? {
            candidate: {
              version: p.candidate.version,
              documentJson: JSON.stringify(p.candidate.document),
              mode: p.candidate.mode,
              percent: p.candidate.percent ?? 0,
              by: p.candidate.by ?? '',
            },
          }
        : {}),
    })),
  };
}

/** Parses and validates a received bundle; throws with the reason when it is malformed. */
export function bundleFromWire(wire: PolicyBundleWire): PolicyBundle {
  const version = (v: BundleVersionWire) => ({
    version: v.version,
    document: JSON.parse(v.documentJson) as unknown,
  });
  return policyBundleSchema.parse({
    revision: Number(wire.revision),
    policies: wire.policies.map((p) => ({
      name: p.name,
      ...(p.stable ? { stable: version(p.stable) } : {}),
      ...(p.candidate
        ? {
            candidate: {
              ...version(p.candidate),
              mode: p.candidate.mode,
              ...(p.candidate.mode === 'canary' ? { percent: p.candidate.percent } : {}),
              ...(p.candidate.by === 'job' || p.candidate.by === 'key' ? { by: p.candidate.by } : {}),
            },
          }
        : {}),
    })),
  });
}
