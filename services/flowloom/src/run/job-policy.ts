import { readFileSync, statSync } from 'node:fs';
import { formatDiagnostics, JOB_POLICY_FORBIDDEN_ACTIONS, loadPolicy } from '@flowloom/policy-engine';
import { UsageError } from '../command.js';

/** What `--policy P` names: a policy file to push, or a version pushed before. */
export type JobPolicySpec =
  | { kind: 'file'; path: string; source: string; name: string; version: string }
  | { kind: 'version'; id: string };

const VERSION_ID = /^[0-9a-f]{7,64}$/i;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Reads `--policy P`: a YAML or JSON file when one exists at P (validated here, with the messages
 * pointing at its lines, so that a bad file is refused before the job starts), else the id or a
 * unique prefix (7+ hex characters) of a version already pushed.
 */
export function jobPolicySpec(spec: string): JobPolicySpec {
  if (!isFile(spec)) {
    if (VERSION_ID.test(spec)) return { kind: 'version', id: spec.toLowerCase() };
    throw new UsageError(
      `--policy ${spec}: no such file; give a policy file (YAML or JSON) or the id of a pushed version (7 to 64 hex characters)`,
    );
  }
  let source: string;
  try {
    source = readFileSync(spec, 'utf8');
  } catch (error) {
    throw new UsageError(`--policy ${spec}: cannot read it: ${(error as Error).message}`);
  }
  const loaded = loadPolicy(source, { filename: spec, forbiddenActions: JOB_POLICY_FORBIDDEN_ACTIONS });
  if (!loaded.ok)
    throw new UsageError(
      `the job policy ${spec} is invalid; the job was not started:\n${formatDiagnostics(loaded.errors)}`,
    );
  return { kind: 'file', path: spec, source, name: loaded.policy.name, version: loaded.policy.version };
}
