import { AppError } from '@flowloom/errors';
import type { Actor, CanaryBy, DeploymentState, Promotion, RolloutMode } from './model.js';

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

/** Four eyes: the version's author never approves its promotion. */
export function assertCanApprove(promotion: Promotion, approver: Actor): void {
  if (promotion.status !== 'pending')
    throw new AppError(
      'conflict',
      `Promotion ${promotion.id} is ${promotion.status}; only a pending one can be approved.`,
    );
  if (approver.id === promotion.author)
    throw new AppError(
      'forbidden',
      `${approver.id} wrote version ${promotion.version.slice(0, 12)} of "${promotion.name}" and cannot approve its promotion; another person must.`,
    );
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
