export { policyMigrations } from './adapters/migrations.js';
export { POLICY_TABLES, policyLoginGrantsSql } from './adapters/migrations-grants.js';
export type { DecisionView } from './app/decisions.js';
export type { PolicyAdmin } from './app/policies.js';
export type { AdminAuthorizer } from './http/routes.js';
export { startPolicyHttp } from './http/server.js';
export { type PolicyService, type PolicyServiceOptions, startPolicyService } from './main.js';
