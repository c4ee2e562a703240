import type { CloudEvent } from '@flowloom/contracts';
import type { Deployment, DeploymentState, KeyIdentity, PolicyVersion, Promotion } from '../domain/model.js';

export type NewVersion = Omit<PolicyVersion, 'seq' | 'previous' | 'createdAt'>;
export type NewDeployment = DeploymentState & Pick<Deployment, 'name' | 'reason' | 'actor' | 'promotionId'>;

/**
 * Policies, their versions, deployments and promotions. Every change commits together with the events
 * that describe it (a transactional outbox), so the audit trail never misses one.
 */
export interface PolicyRepository {
  /** Stores a version unless the same content is stored already (then `created` is false). */
  insertVersion(
    version: NewVersion,
    events: (stored: PolicyVersion) => CloudEvent[],
  ): Promise<{ created: boolean; version: PolicyVersion }>;
  /** By full id or a unique prefix of at least 7 characters. */
  getVersion(name: string, idOrPrefix: string): Promise<PolicyVersion | undefined>;
  /** Names of the policies (at most 2: enough to tell it is ambiguous) with a version of this id or prefix. */
  policiesWithVersion(idOrPrefix: string): Promise<string[]>;
  latestVersion(name: string): Promise<PolicyVersion | undefined>;
  listVersions(name: string): Promise<PolicyVersion[]>;
  listPolicies(): Promise<string[]>;

  currentDeployment(name: string): Promise<Deployment | undefined>;
  /** Whether some deployment of the policy, current or past, enforced this version as its stable one. */
  wasStable(name: string, version: string): Promise<boolean>;
  /** Newest first. */
  deploymentHistory(name: string, limit: number): Promise<Deployment[]>;
  /** Applies a deployment (and marks its promotion applied) with its events; returns it with its revision. */
  deploy(
    deployment: NewDeployment,
    events: (applied: Deployment) => CloudEvent[],
    approval?: { promotionId: string; approvedBy: string; approver: KeyIdentity },
  ): Promise<Deployment>;
  /** The current deployment of every policy that has one, and the highest revision. */
  activeDeployments(): Promise<{ revision: number; deployments: Deployment[] }>;
  revision(): Promise<number>;

  createPromotion(promotion: Promotion, events: CloudEvent[]): Promise<void>;
  getPromotion(id: string): Promise<Promotion | undefined>;
  listPromotions(name: string, limit: number): Promise<Promotion[]>;
}
