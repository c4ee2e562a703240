import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundled } from '../bin/bundle.mjs';

// Sources must live in the checkout (bundles are named by their path in it), so each test writes a
// small program of its own under this folder and removes it afterwards.
const HERE = fileURLToPath(new URL('.', import.meta.url));

interface Program {
  describe(): string;
}

describe('the CLI bundle (bin/bundle.mjs)', () => {
  let sources: string;
  let cache: string;

  beforeEach(() => {
    sources = mkdtempSync(join(HERE, '.bundle-src-'));
    cache = mkdtempSync(join(tmpdir(), 'flowloom-bundle-'));
    writeFileSync(
      join(sources, 'entry.ts'),
      [
        "import { parse } from 'yaml';",
        "import { word } from './word.js';",
        'export function describe(): string {',
        "  const here = new URL('.', import.meta.url).pathname;",
        "  return [word, parse('n: 2').n, here].join(' ');",
        '}',
      ].join('\n'),
    );
    writeFileSync(join(sources, 'word.ts'), "export const word: string = 'first';\n");
  });

  afterEach(() => {
    rmSync(sources, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  });

  const load = async (dirs: string[]): Promise<{ url: string; program: Program }> => {
    const url = await bundled(join(sources, 'entry.ts'), dirs);
    // A query makes each import a fresh module: the same URL may hold a rebuilt bundle.
    const program = (await import(`${url}?v=${Date.now()}${Math.random()}`)) as Program;
    return { url, program };
  };

  it('when built, then it runs the TypeScript sources with their packages and their own locations', async () => {
    const { url, program } = await load([cache]);
    expect(url.startsWith(pathToFileURL(cache).href)).toBe(true);
    // import.meta.url still names the source's folder, not the cache's.
    expect(program.describe()).toBe(`first 2 ${pathToFileURL(sources).pathname}/`);
    // Packages are imported from node_modules, not copied into the bundle.
    expect(readFileSync(fileURLToPath(url), 'utf8')).toMatch(/from "[^"]*node_modules\/yaml\//);
  });

  it('when no source changed, then the bundle is reused; when one did, then it is rebuilt', async () => {
    const first = await load([cache]);
    const builtAt = statSync(fileURLToPath(first.url)).mtimeMs;
    const again = await load([cache]);
    expect(statSync(fileURLToPath(again.url)).mtimeMs).toBe(builtAt);

    writeFileSync(join(sources, 'word.ts'), "export const word: string = 'second';\n");
    const rebuilt = await load([cache]);
    expect(rebuilt.program.describe()).toMatch(/^second 2 /);
  });

  it('when the first cache folder cannot be written, then the next one is used', async () => {
    // A folder under a plain file cannot be created, whoever runs the test (root included).
    const aFile = join(cache, 'a-file');
    writeFileSync(aFile, '');
    const fallback = join(cache, 'fallback');
    const { url, program } = await load([join(aFile, 'cache'), fallback]);
    expect(url.startsWith(pathToFileURL(fallback).href)).toBe(true);
    expect(program.describe()).toMatch(/^first 2 /);
  });

  it('when a source does not compile, then it fails naming the file', async () => {
    writeFileSync(join(sources, 'word.ts'), 'export const word: string = ;\n');
    await expect(bundled(join(sources, 'entry.ts'), [cache])).rejects.toThrow(/word\.ts/);
  });
});
