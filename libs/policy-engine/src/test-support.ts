import { formatDiagnostics } from './document/diagnostics.js';
import { loadPolicy } from './document/load.js';
import type { CompiledPolicy } from './evaluate/compile-policy.js';

/** Loads a YAML policy for a test, failing the test with the diagnostics if it is invalid. */
export function policyFrom(yaml: string): CompiledPolicy {
  const result = loadPolicy(yaml, { filename: 'test.yaml' });
  if (!result.ok) throw new Error(formatDiagnostics(result.errors));
  return result.policy;
}

/** Builds YAML for a policy whose rules are given as flow mappings, one per line. */
export function rulesYaml(...rules: string[]): string {
  return `name: test\nrules:\n${rules.map((r) => `  - ${r}`).join('\n')}\n`;
}
