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
