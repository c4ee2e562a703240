import { AppError } from '@flowloom/errors';
import type {
  Actor,
  CanaryBy,
  DeploymentState,
  KeyAncestor,
  KeyIdentity,
  Promotion,
  RolloutMode,
} from './model.js';

/**
 * The deployment after promoting `version` to `mode`: shadow and canary make it the candidate (the
 * stable version keeps being enforced for the rest), enforce makes it the stable version.
 */
export function promoted(
  current: DeploymentState,
  version: string,
  mode: RolloutMode,
  percent: number | null,
  by: CanaryBy | null,
): DeploymentState {
  if (mode === 'enforce') {
    if (current.stable === version && current.candidate !== version)
      throw new AppError('conflict', `Version ${version.slice(0, 12)} is already enforced.`);
    const keepCandidate = current.candidate !== null && current.candidate !== version;
    return keepCandidate
      ? { ...current, stable: version }
      : { ...current, stable: version, candidate: null, candidateMode: null, percent: null, by: null };
  }
  if (current.stable === version)
    throw new AppError(
      'conflict',
      `Version ${version.slice(0, 12)} is already enforced; to test a change, push a new version and roll it out.`,
    );
  if (mode === 'canary') {
    if (percent === null || !(percent > 0 && percent < 100))
      throw new AppError('invalid_request', 'A canary needs a percentage between 0 and 100 (exclusive).', {
        param: 'percent',
      });
    return { ...current, candidate: version, candidateMode: 'canary', percent, by: by ?? 'job' };
  }
  return { ...current, candidate: version, candidateMode: 'shadow', percent: null, by: null };
}

/** Shadow changes nothing a caller sees; canary and enforce do, so they wait for a second person. */
export const needsApproval = (mode: RolloutMode): boolean => mode !== 'shadow';

/** The author of a version, as recorded when it was pushed. */
export interface Authorship {
  readonly owner: string;
  readonly keyId: string | null;
  readonly lineage: readonly KeyAncestor[] | null;
}

const samePerson = (a: string, b: string): boolean => a.trim().toLowerCase() === b.trim().toLowerCase();
const keyLabel = (a: { keyId: string; owner: string }): string => `key ${a.keyId} (owner ${a.owner})`;

/**
 * Versions pushed with the bootstrap admin key could never be approved: every admin key descends
 * from it, so its holder could approve under any of them (see `independenceConflict`).
 */
export function assertCanAuthor(actor: Actor): void {
  if (actor.key?.root)
    throw new AppError(
      'forbidden',
      `Key ${actor.key.keyId} is the bootstrap admin key (or a key created before key lineage was recorded): every other admin key descends from it, so a policy version it wrote could never be approved by an independent person. Create a personal admin key for each admin with it (flowloom keys create --name NAME --owner you@example.com --admin) and push with yours.`,
    );
}

/**
 * Why the approver's key could be in the author's hands (or the author's in the approver's), or
 * undefined when the two are independent. A key's secret is shown to whoever created or rotated it,
 * so the holder of a key can also hold every key in its lineage's descendants. Refused when:
 * the same person (owner) or key; the approver's key is a root (it created every key); the
 * approver's key created or rotated the author's key, directly or through keys it created; the
 * author's key did the same for the approver's; or both descend from one key other than a root.
 * The root is the one shared ancestor accepted: it may only hand out personal admin keys.
 */
export function independenceConflict(
  author: Authorship,
  approver: KeyIdentity,
  what = 'this version',
): string | undefined {
  if (samePerson(approver.owner, author.owner) || approver.keyId === author.keyId)
    return `${approver.owner} wrote ${what} and cannot approve its promotion; another person must.`;
  if (approver.root)
    return `${keyLabel(approver)} is the bootstrap admin key (or predates key lineage): it created every admin key, so its holder could have written this version under any of them. Approve with a personal admin key that the author's key did not create.`;
  if (author.keyId === null) return undefined;
  const authorKey = { keyId: author.keyId, owner: author.owner };
  const authorLineage = author.lineage ?? [];
  if (authorLineage.some((a) => a.keyId === approver.keyId))
    return `Your ${keyLabel(approver)} created or rotated the author's ${keyLabel(authorKey)} (directly or through keys it created), so you could have written this version yourself. Another admin, whose key does not descend from yours, must approve.`;
  if (approver.lineage.some((a) => a.keyId === author.keyId))
    return `Your ${keyLabel(approver)} descends from the author's ${keyLabel(authorKey)} (it was created or rotated through it), so the author could hold it. Approve with a personal admin key created by another admin (ask the holder of the bootstrap admin key for one).`;
  const shared = approver.lineage.find((a) => !a.root && authorLineage.some((b) => b.keyId === a.keyId));
  if (shared)
    return `Your ${keyLabel(approver)} and the author's ${keyLabel(authorKey)} both descend from ${keyLabel(shared)}, so its holder could hold both. Approve with an admin key that does not descend from it (ask the holder of the bootstrap admin key for one).`;
  return undefined;
}

/** Four eyes: the promotion is approved by a person independent of the version's author. */
export function assertCanApprove(promotion: Promotion, author: Authorship, approver: Actor): KeyIdentity {
  if (promotion.status !== 'pending')
    throw new AppError(
      'conflict',
      `Promotion ${promotion.id} is ${promotion.status}; only a pending one can be approved.`,
    );
  if (!approver.key)
    throw new AppError('forbidden', 'Approving a promotion needs a personal admin key; send one.');
  const conflict = independenceConflict(
    author,
    approver.key,
    `version ${promotion.version.slice(0, 12)} of "${promotion.name}"`,
  );
  if (conflict) throw new AppError('forbidden', `Promotion ${promotion.id}: ${conflict}`);
  return approver.key;
}

/** `24h`, `30m`, `7d`, `90s` before `now`, or an ISO date. */
export function parseSince(text: string, now: Date): Date {
  const relative = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(text.trim());
  if (relative) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(relative[1]) * unit);
  }
  const at = new Date(text);
  if (Number.isNaN(at.getTime()))
    throw new AppError('invalid_request', `"${text}" is not a duration (24h, 30m, 7d) or an ISO date.`, {
      param: 'since',
    });
  return at;
}
