import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema, ENV_VARIABLES } from '@flowloom/config';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The README's configuration reference against the code: every FLOWLOOM_* variable that services/ or
// libs/ mention (read, set or named in a message) and every key the flowloom.yaml schema accepts must
// be documented, so a new setting cannot ship unexplained.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The README section from `## <title>` to the next `## `. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  expect(start, `README has a "## ${title}" section`).toBeGreaterThan(-1);
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end === -1 ? undefined : end);
}
const CONFIGURATION = section('Configuration');

function* sourceFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) yield path;
  }
}

/** Every FLOWLOOM_* name in the sources, with the first file that mentions it. */
function variablesInSources(): Map<string, string> {
  const found = new Map<string, string>();
  for (const top of ['services', 'libs']) {
    for (const file of sourceFiles(join(ROOT, top))) {
      for (const [name] of readFileSync(file, 'utf8').matchAll(/\bFLOWLOOM_[A-Z0-9]+(?:_[A-Z0-9]+)*\b/g)) {
        if (!found.has(name)) found.set(name, relative(ROOT, file));
      }
    }
  }
  return found;
}

type Def = {
  type: string;
  innerType?: unknown;
  in?: unknown;
  shape?: Record<string, unknown>;
  valueType?: unknown;
  element?: unknown;
};
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** Every key path the schema accepts; `*` stands for a record's key (a provider's name), `[]` for a list item. */
function keyPaths(schema: unknown, path: string[] = [], out: string[][] = []): string[][] {
  const def = defOf(schema);
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
      return keyPaths(def.innerType, path, out);
    case 'pipe':
      return keyPaths(def.in, path, out);
    case 'record':
      return keyPaths(def.valueType, [...path, '*'], out);
    case 'array':
      return keyPaths(def.element, [...path, '[]'], out);
    case 'object':
      for (const [key, value] of Object.entries(def.shape ?? {})) {
        out.push([...path, key]);
        keyPaths(value, [...path, key], out);
      }
      return out;
    default:
      return out;
  }
}

/** Whether `path` exists in a parsed YAML example (`*` matches any key, `[]` any item). */
function inExample(value: unknown, path: readonly string[]): boolean {
  if (path.length === 0) return true;
  const [head, ...rest] = path as [string, ...string[]];
  if (value === null || typeof value !== 'object') return false;
  if (head === '[]') return Array.isArray(value) && value.some((item) => inExample(item, rest));
  if (Array.isArray(value)) return false;
  const entries = Object.entries(value as Record<string, unknown>);
  if (head === '*') return entries.some(([, child]) => inExample(child, rest));
  return entries.some(([key, child]) => key === head && inExample(child, rest));
}

const yamlExamples = [...CONFIGURATION.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1] ?? ''));

/** Documented: `a.b` in the section, or in its flowloom.yaml example, or (for keys of each provider, alias, budget, ...) `b` in its prose. */
function documented(path: readonly string[]): boolean {
  const named = path.filter((p) => p !== '*' && p !== '[]');
  if (CONFIGURATION.includes(`\`${named.join('.')}\``)) return true;
  if (yamlExamples.some((example) => inExample(example, path))) return true;
  const perItem = path.includes('*') || path.includes('[]');
  return perItem && CONFIGURATION.includes(`\`${named[named.length - 1]}\``);
}

describe("the README's configuration reference", () => {
  it('when the sources mention a FLOWLOOM_* variable, then the README documents it', () => {
    const variables = variablesInSources();
    expect(variables.size).toBeGreaterThan(30);
    const missing = [...variables]
      .filter(([name]) => !README.includes(`\`${name}\``))
      .map(([name, file]) => `${name} (${file})`);
    expect(missing).toEqual([]);
  });

  it('when the config loader reads a variable, then its row in the configuration table names the variable and its flowloom.yaml key', () => {
    const rows = CONFIGURATION.split('\n').filter((line) => line.startsWith('| '));
    const missing = Object.entries(ENV_VARIABLES)
      .filter(
        ([name, { key }]) => !rows.some((row) => row.includes(`\`${name}\``) && row.includes(`\`${key}\``)),
      )
      .map(([name, { key }]) => `${name} → ${key}`);
    expect(missing).toEqual([]);
  });

  it('when flowloom.yaml accepts a key, then the configuration section names it or shows it in its example', () => {
    const paths = keyPaths(configSchema);
    expect(paths.length).toBeGreaterThan(50);
    // A group (kafkaTopics, signals) is documented through its keys.
    const within = (outer: string[], inner: string[]) =>
      inner.length > outer.length && outer.every((part, i) => inner[i] === part);
    const missing = paths
      .filter((path) => !documented(path) && !paths.some((inner) => within(path, inner) && documented(inner)))
      .map((path) => path.join('.'));
    expect(missing).toEqual([]);
  });

  it('when a key or variable is not documented, then the checks above notice (so their pass means something)', () => {
    expect(documented(['routing', 'retryBaseMs'])).toBe(true);
    expect(documented(['routing', 'retryBaseMss'])).toBe(false);
    expect(documented(['providers', '*', 'apiKeyEnv'])).toBe(true);
    expect(documented(['signals', 'noSuchWindow'])).toBe(false);
    expect(README.includes('`FLOWLOOM_NO_SUCH_SETTING`')).toBe(false);
  });
});
