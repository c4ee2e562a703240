import type { PolicyDocument } from '@flowloom/policy-engine';

export type RolloutMode = 'shadow' | 'canary' | 'enforce';
export type CanaryBy = 'job' | 'key';

/** A key whose holder could have known another key's secret (its creator, rotator, and theirs). */
export interface KeyAncestor {
  readonly keyId: string;
  readonly owner: string;
  /** Has no creator: the bootstrap admin key (or a key older than lineage). */
  readonly root: boolean;
}

/** The admin key someone acts with, as the gateway's key store knows it. */
export interface KeyIdentity {
  readonly keyId: string;
  readonly owner: string;
  readonly root: boolean;
  /** Nearest first. */
  readonly lineage: readonly KeyAncestor[];
}

/**
 * Who did something: `id` is the person (a key's owner) that approvals compare; `label` names the key
 * too; `key` is the key's identity (absent for the system, e.g. the configured policy at start).
 */
export interface Actor {
  readonly id: string;
  readonly label: string;
  readonly key?: KeyIdentity;
}

/** An immutable, content-addressed version of a policy. */
export interface PolicyVersion {
  readonly name: string;
  /** Hex SHA-256 of the canonical normalized document. */
  readonly version: string;
  /** 1, 2, 3… in push order within the policy. */
  readonly seq: number;
  readonly document: PolicyDocument;
  readonly source: string;
  readonly format: 'yaml' | 'json';
  readonly author: string;
  readonly authorKey: string | null;
  /** The author key's lineage when it was pushed (null: pushed by the system or before lineage). */
  readonly authorLineage: readonly KeyAncestor[] | null;
  readonly message: string;
  /** The version pushed before this one. */
  readonly previous: string | null;
  readonly createdAt: Date;
}

/** What gateways enforce for one policy; every change is a new row (revision), so history is kept. */
export interface Deployment {
  readonly revision: number;
  readonly name: string;
  /** Enforced for everyone (except the canary's share). */
  readonly stable: string | null;
  /** Rolled out in shadow or canary. */
  readonly candidate: string | null;
  readonly candidateMode: 'shadow' | 'canary' | null;
  readonly percent: number | null;
  readonly by: CanaryBy | null;
  readonly reason: string;
  readonly actor: string;
  readonly promotionId: string | null;
  readonly createdAt: Date;
}

export type DeploymentState = Pick<Deployment, 'stable' | 'candidate' | 'candidateMode' | 'percent' | 'by'>;

export interface Promotion {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly mode: RolloutMode;
  readonly percent: number | null;
  readonly by: CanaryBy | null;
  /** The version's author (the person who may not approve it). */
  readonly author: string;
  readonly requestedBy: string;
  readonly requestedAt: Date;
  readonly status: 'pending' | 'applied' | 'superseded';
  readonly approvedBy: string | null;
  /** The approver's key, owner and lineage, so an auditor can check the two people were independent. */
  readonly approver: KeyIdentity | null;
  readonly approvedAt: Date | null;
  readonly revision: number | null;
}

export const EMPTY_STATE: DeploymentState = {
  stable: null,
  candidate: null,
  candidateMode: null,
  percent: null,
  by: null,
};
