import {
  type CloudEvent,
  createEvent,
  POLICY_DEPLOYMENT_CHANGED,
  POLICY_PROMOTION_APPROVED,
  POLICY_PROMOTION_REQUESTED,
  POLICY_VERSION_PUSHED,
  type PolicyDeploymentChanged,
  type PolicyPromotion,
  type PolicyVersionPushed,
  uuidv7,
} from '@flowloom/contracts';
import { AppError } from '@flowloom/errors';
import {
  type CompileOptions,
  compilePolicy,
  diffPolicies,
  formatDiagnostics,
  formatPolicyDiff,
  JOB_POLICY_FORBIDDEN_ACTIONS,
  loadPolicy,
  type PolicyDiagnostic,
  type PolicyDiff,
} from '@flowloom/policy-engine';
import type {
  Actor,
  CanaryBy,
  Deployment,
  KeyAncestor,
  KeyIdentity,
  PolicyVersion,
  Promotion,
  RolloutMode,
} from '../domain/model.js';
import { EMPTY_STATE } from '../domain/model.js';
import { assertCanApprove, assertCanAuthor, needsApproval, promoted } from '../domain/rollout.js';
import type { PolicyRepository } from '../ports/policy-repository.js';

export const POLICY_SOURCE = 'flowloom/policy';

export interface PolicySourceText {
  /** YAML or JSON text; `document` (an already-parsed body) is the alternative. */
  source?: string;
  document?: unknown;
  /** Names the text in diagnostics and tells JSON from YAML by extension. */
  filename?: string;
  format?: 'yaml' | 'json';
}

export type ValidationResult =
  | { ok: true; name: string; version: string; rules: number }
  | { ok: false; errors: readonly PolicyDiagnostic[]; message: string };

export interface PromoteRequest {
  version: string;
  mode: RolloutMode;
  percent?: number;
  by?: CanaryBy;
}

export type PromoteResult =
  | { status: 'applied'; deployment: Deployment; promotion?: Promotion }
  | { status: 'pending'; promotion: Promotion };

/** Called after every change of what gateways enforce (the distributor refreshes at once). */
export type OnDeploymentChange = () => Promise<void>;

/**
 * Policy administration: validate, push immutable versions, diff, promote with a second person's
 * approval, roll back. Every change is recorded as an event in the same transaction.
 */
export class PolicyAdmin {
  constructor(
    private readonly repo: PolicyRepository,
    private readonly onChange: OnDeploymentChange = async () => {},
    private readonly now: () => Date = () => new Date(),
  ) {}

  validate(input: PolicySourceText): ValidationResult {
    const loaded = load(input);
    if (!loaded.ok) return { ok: false, errors: loaded.errors, message: formatDiagnostics(loaded.errors) };
    return {
      ok: true,
      name: loaded.policy.name,
      version: loaded.policy.version,
      rules: loaded.document.rules.length,
    };
  }

  /** Stores a new version (an invalid one is refused with the pointed diagnostics and stored nowhere). */
  async push(
    input: PolicySourceText & { message?: string; jobPolicy?: boolean },
    actor: Actor,
  ): Promise<{ created: boolean; version: PolicyVersion; diff?: PolicyDiff }> {
    // A job policy only adds restrictions to one job and needs no approval, so the reason to refuse
    // the bootstrap key (no one could independently approve what it wrote) does not apply to it.
    if (!input.jobPolicy) assertCanAuthor(actor);
    const loaded = load(input, input.jobPolicy ? { forbiddenActions: JOB_POLICY_FORBIDDEN_ACTIONS } : {});
    if (!loaded.ok) {
      throw new AppError(
        'invalid_request',
        `The policy is invalid and was not stored:\n${formatDiagnostics(loaded.errors)}`,
        {
          details: { errors: loaded.errors },
        },
      );
    }
    const name = loaded.policy.name;
    const previous = await this.repo.latestVersion(name);
    const diff = previous ? diffPolicies(previous.document, loaded.document) : undefined;
    const result = await this.repo.insertVersion(
      {
        name,
        version: loaded.policy.version,
        document: loaded.document,
        source: input.source ?? JSON.stringify(input.document, null, 2),
        format: input.source === undefined || formatOf(input) === 'json' ? 'json' : 'yaml',
        author: actor.id,
        authorKey: actor.key?.keyId ?? null,
        authorLineage: actor.key?.lineage ?? null,
        message: input.message?.trim() || '(no message)',
      },
      (stored) => {
        const data: PolicyVersionPushed = {
          name,
          version: stored.version,
          seq: stored.seq,
          author: stored.author,
          message: stored.message,
          ...(stored.previous ? { previous: stored.previous } : {}),
          document: stored.document,
          ...(input.jobPolicy ? { jobPolicy: true } : {}),
          ...(diff
            ? {
                added: diff.added.map((r) => r.id),
                removed: diff.removed.map((r) => r.id),
                changed: diff.changed.map((r) => r.id),
              }
            : {}),
        };
        return [createEvent(POLICY_VERSION_PUSHED, POLICY_SOURCE, data, `policy/${name}`)];
      },
    );
    return { ...result, ...(diff && result.created ? { diff } : {}) };
  }

  async policies(): Promise<
    Array<{ name: string; latest: PolicyVersion | undefined; deployment: Deployment | undefined }>
  > {
    const names = await this.repo.listPolicies();
    return Promise.all(
      names.map(async (name) => ({
        name,
        latest: await this.repo.latestVersion(name),
        deployment: await this.repo.currentDeployment(name),
      })),
    );
  }

  async policy(name: string): Promise<{
    name: string;
    deployment: Deployment | undefined;
    versions: PolicyVersion[];
    history: Deployment[];
    promotions: Promotion[];
  }> {
    const versions = await this.repo.listVersions(name);
    if (versions.length === 0)
      throw new AppError('not_found', `No policy named "${name}". See GET /api/v1/policies.`);
    return {
      name,
      deployment: await this.repo.currentDeployment(name),
      versions,
      history: await this.repo.deploymentHistory(name, 50),
      promotions: await this.repo.listPromotions(name, 50),
    };
  }

  /**
   * A version by its id or a unique prefix, whatever its policy: how a job policy
   * (`flowloom run --policy`) is named, and what gateways fetch to evaluate it.
   */
  versionById(idOrPrefix: string): Promise<PolicyVersion> {
    return findVersionById(this.repo, idOrPrefix);
  }

  async version(name: string, version: string): Promise<PolicyVersion> {
    const found = await this.repo.getVersion(name, version);
    if (!found)
      throw new AppError('not_found', `Policy "${name}" has no version ${version}.`, { param: 'version' });
    return found;
  }

  /** `to` defaults to the latest version, `from` to the one pushed before `to`. */
  async diff(name: string, from?: string, to?: string): Promise<{ diff: PolicyDiff; text: string }> {
    const after = to ? await this.version(name, to) : await this.repo.latestVersion(name);
    if (!after) throw new AppError('not_found', `No policy named "${name}".`);
    const beforeId = from ?? after.previous;
    if (!beforeId)
      throw new AppError(
        'invalid_request',
        `Version ${after.version.slice(0, 12)} is the first one; give --from.`,
      );
    const before = await this.version(name, beforeId);
    const diff = diffPolicies(before.document, after.document);
    return { diff, text: formatPolicyDiff(diff) };
  }

  /** Compares a document that is not stored with the policy's stable (else latest) version. */
  async diffDocument(
    input: PolicySourceText,
  ): Promise<{ diff: PolicyDiff; text: string; against: string | null }> {
    const loaded = load(input);
    if (!loaded.ok)
      throw new AppError('invalid_request', `The policy is invalid:\n${formatDiagnostics(loaded.errors)}`);
    const name = loaded.policy.name;
    const deployment = await this.repo.currentDeployment(name);
    const against = deployment?.stable
      ? await this.repo.getVersion(name, deployment.stable)
      : await this.repo.latestVersion(name);
    const diff = diffPolicies(against?.document ?? { name, rules: [] }, loaded.document);
    return { diff, text: formatPolicyDiff(diff), against: against?.version ?? null };
  }

  /**
   * Shadow is applied at once (it changes nothing a caller sees); canary and enforce become a pending
   * promotion that someone other than the version's author must approve.
   */
  async promote(name: string, request: PromoteRequest, actor: Actor): Promise<PromoteResult> {
    const version = await this.version(name, request.version);
    const current = (await this.repo.currentDeployment(name)) ?? EMPTY_STATE;
    const percent = request.mode === 'canary' ? (request.percent ?? null) : null;
    const by = request.mode === 'canary' ? (request.by ?? 'job') : null;
    // Checked now as well as at approval, so an impossible request never waits for a reviewer.
    promoted(current, version.version, request.mode, percent, by);
    if (!needsApproval(request.mode)) {
      const deployment = await this.apply(
        name,
        version.version,
        request.mode,
        percent,
        by,
        actor.label,
        'shadow',
      );
      return { status: 'applied', deployment };
    }
    const promotion: Promotion = {
      id: uuidv7(),
      name,
      version: version.version,
      mode: request.mode,
      percent,
      by,
      author: version.author,
      requestedBy: actor.id,
      requestedAt: this.now(),
      status: 'pending',
      approvedBy: null,
      approver: null,
      approvedAt: null,
      revision: null,
    };
    await this.repo.createPromotion(promotion, [
      createEvent(POLICY_PROMOTION_REQUESTED, POLICY_SOURCE, promotionEvent(promotion), `policy/${name}`),
    ]);
    return { status: 'pending', promotion };
  }

  promotion(id: string): Promise<Promotion | undefined> {
    return this.repo.getPromotion(id);
  }

  async approve(
    promotionId: string,
    actor: Actor,
  ): Promise<{ promotion: Promotion; deployment: Deployment }> {
    const promotion = await this.repo.getPromotion(promotionId);
    if (!promotion) throw new AppError('not_found', `No promotion ${promotionId}.`, { param: 'id' });
    const version = await this.version(promotion.name, promotion.version);
    const approver = assertCanApprove(
      promotion,
      { owner: version.author, keyId: version.authorKey, lineage: version.authorLineage },
      actor,
    );
    const approved = {
      approvedBy: actor.id,
      approver: approverEvent(approver),
      ...(version.authorKey ? { authorKey: version.authorKey } : {}),
      ...(version.authorLineage ? { authorLineage: version.authorLineage.map(ancestorEvent) } : {}),
    };
    const current = (await this.repo.currentDeployment(promotion.name)) ?? EMPTY_STATE;
    const state = promoted(current, promotion.version, promotion.mode, promotion.percent, promotion.by);
    const deployment = await this.repo.deploy(
      {
        name: promotion.name,
        ...state,
        reason: `promote to ${promotion.mode}`,
        actor: actor.label,
        promotionId,
      },
      (applied) => [
        createEvent(
          POLICY_PROMOTION_APPROVED,
          POLICY_SOURCE,
          { ...promotionEvent(promotion), ...approved },
          `policy/${promotion.name}`,
        ),
        deploymentEvent(applied),
      ],
      { promotionId, approvedBy: actor.id, approver },
    );
    await this.onChange();
    return {
      promotion: {
        ...promotion,
        status: 'applied',
        approvedBy: actor.id,
        approver,
        approvedAt: this.now(),
        revision: deployment.revision,
      },
      deployment,
    };
  }

  /**
   * Puts back the deployment before the current one, or, with `to`, enforces that version alone.
   * An emergency action: no approval, always recorded. So that it is no way around approval, `to`
   * must be a version this policy enforced (as stable) before.
   */
  async rollback(name: string, actor: Actor, to?: string): Promise<Deployment> {
    const history = await this.repo.deploymentHistory(name, 2);
    const current = history[0];
    if (!current)
      throw new AppError('not_found', `Policy "${name}" was never deployed; nothing to roll back.`);
    if (to) {
      const version = await this.version(name, to);
      if (!(await this.repo.wasStable(name, version.version))) {
        const short = version.version.slice(0, 12);
        throw new AppError(
          'conflict',
          `Version ${short} of policy "${name}" was never enforced, so it cannot be a rollback target: rollback only returns to a version that was enforced before. To enforce it, promote it (flowloom policy promote ${name} ${short} --mode enforce) and have someone other than its author approve it.`,
          { param: 'to' },
        );
      }
      return this.deployState(
        name,
        { ...EMPTY_STATE, stable: version.version },
        `rollback to ${version.version.slice(0, 12)}`,
        actor.label,
      );
    }
    const previous = history[1];
    const state = previous
      ? {
          stable: previous.stable,
          candidate: previous.candidate,
          candidateMode: previous.candidateMode,
          percent: previous.percent,
          by: previous.by,
        }
      : EMPTY_STATE;
    return this.deployState(
      name,
      state,
      previous ? `rollback to revision ${previous.revision}` : 'rollback: nothing deployed',
      actor.label,
    );
  }

  /**
   * The policy file of the configuration at start: pushed (idempotently) and, when the policy was
   * never deployed, deployed in the configured mode. Later changes go through promotion.
   */
  async bootstrap(
    input: PolicySourceText,
    mode: RolloutMode,
    percent: number,
    actor: Actor,
  ): Promise<{ version: PolicyVersion; deployed: boolean }> {
    const { version } = await this.push(
      { ...input, message: `loaded from ${input.filename ?? 'configuration'}` },
      actor,
    );
    if (await this.repo.currentDeployment(version.name)) return { version, deployed: false };
    await this.apply(
      version.name,
      version.version,
      mode,
      mode === 'canary' ? percent : null,
      mode === 'canary' ? 'job' : null,
      actor.label,
      'initial',
    );
    return { version, deployed: true };
  }

  private async apply(
    name: string,
    version: string,
    mode: RolloutMode,
    percent: number | null,
    by: CanaryBy | null,
    actor: string,
    reason: string,
  ): Promise<Deployment> {
    const current = (await this.repo.currentDeployment(name)) ?? EMPTY_STATE;
    return this.deployState(name, promoted(current, version, mode, percent, by), reason, actor);
  }

  private async deployState(
    name: string,
    state: typeof EMPTY_STATE,
    reason: string,
    actor: string,
  ): Promise<Deployment> {
    const deployment = await this.repo.deploy(
      { name, ...state, reason, actor, promotionId: null },
      (applied) => [deploymentEvent(applied)],
    );
    await this.onChange();
    return deployment;
  }
}

/** A version id is a hash of the document, name included, so it names its policy. */
export async function policyOfVersion(repo: PolicyRepository, idOrPrefix: string): Promise<string> {
  const names = await repo.policiesWithVersion(idOrPrefix);
  if (names.length > 1)
    throw new AppError(
      'invalid_request',
      `Version prefix ${idOrPrefix} matches versions of several policies (${names.join(', ')}); give more characters or the policy name.`,
      { param: 'version' },
    );
  const name = names[0];
  if (name === undefined)
    throw new AppError('not_found', `No policy has a version ${idOrPrefix}. See GET /api/v1/policies.`, {
      param: 'version',
    });
  return name;
}

async function findVersionById(repo: PolicyRepository, idOrPrefix: string): Promise<PolicyVersion> {
  const name = await policyOfVersion(repo, idOrPrefix);
  const found = await repo.getVersion(name, idOrPrefix);
  if (!found)
    throw new AppError('not_found', `No policy has a version ${idOrPrefix}. See GET /api/v1/policies.`, {
      param: 'version',
    });
  return found;
}

function formatOf(input: PolicySourceText): 'yaml' | 'json' {
  return input.format ?? (input.filename?.toLowerCase().endsWith('.json') ? 'json' : 'yaml');
}

function load(input: PolicySourceText, options: CompileOptions = {}) {
  if (input.source !== undefined)
    return loadPolicy(input.source, {
      ...options,
      format: formatOf(input),
      ...(input.filename ? { filename: input.filename } : {}),
    });
  if (input.document !== undefined) return compilePolicy(input.document, options);
  throw new AppError(
    'invalid_request',
    'Send the policy as "source" (YAML or JSON text) or "document" (JSON).',
    {
      param: 'source',
    },
  );
}

const ancestorEvent = (a: KeyAncestor) => ({ keyId: a.keyId, owner: a.owner, root: a.root });

/** What the approval event says of the approver: enough for an auditor to re-check independence. */
function approverEvent(key: KeyIdentity): NonNullable<PolicyPromotion['approver']> {
  return { keyId: key.keyId, owner: key.owner, root: key.root, lineage: key.lineage.map(ancestorEvent) };
}

function promotionEvent(p: Promotion): PolicyPromotion {
  return {
    promotionId: p.id,
    name: p.name,
    version: p.version,
    mode: p.mode,
    ...(p.percent !== null ? { percent: p.percent } : {}),
    ...(p.by !== null ? { by: p.by } : {}),
    author: p.author,
    requestedBy: p.requestedBy,
  };
}

function deploymentEvent(d: Deployment): CloudEvent<PolicyDeploymentChanged> {
  const data: PolicyDeploymentChanged = {
    name: d.name,
    revision: d.revision,
    ...(d.stable ? { stable: d.stable } : {}),
    ...(d.candidate ? { candidate: d.candidate } : {}),
    ...(d.candidateMode ? { candidateMode: d.candidateMode } : {}),
    ...(d.percent !== null ? { percent: d.percent } : {}),
    ...(d.by ? { by: d.by } : {}),
    reason: d.reason,
    actor: d.actor,
    ...(d.promotionId ? { promotionId: d.promotionId } : {}),
  };
  return createEvent(POLICY_DEPLOYMENT_CHANGED, POLICY_SOURCE, data, `policy/${d.name}`);
}
