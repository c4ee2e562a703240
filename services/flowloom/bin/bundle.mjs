// The CLI's TypeScript sources, bundled by esbuild into one ESM file that plain Node runs.
//
// Why not a TypeScript loader (tsx) at run time: its hooks keep a thread of their own alive for the
// life of the process, about 44 MB of a gateway that should idle near 250 MB, and every start
// transpiles file by file. The bundle is built on the first start after a source changes (~1 s), kept
// in node_modules/.cache/flowloom (or the temp folder when that is read-only), and reused while every
// source it was built from is unchanged. There is still no build step between `npm ci` and `flowloom`.
//
// Only the project's own sources go in the bundle. Packages from node_modules stay outside it,
// resolved from the file that imports them as Node would (a workspace may have its own nested
// version of a package), so they load exactly as they did from the sources.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FORMAT_VERSION = 1;

/**
 * The file URL of an up-to-date bundle of `entry` (an absolute path to a .ts file), building it when
 * it is missing or stale, in the first of `dirs` that can be written. Throws when esbuild cannot
 * build it.
 */
export async function bundled(entry, dirs = cacheDirs()) {
  const name = relative(ROOT, entry).replace(/[\\/]/g, '_').replace(/\.ts$/, '');
  for (const dir of dirs) {
    const out = join(dir, `${name}.mjs`);
    if (isFresh(`${out}.inputs.json`)) return pathToFileURL(out).href;
  }
  const { code, map, inputs } = await build(entry);
  let lastError;
  for (const dir of dirs) {
    const out = join(dir, `${name}.mjs`);
    try {
      mkdirSync(dir, { recursive: true });
      // Written aside and renamed, so that processes starting together never read half a file.
      const suffix = `.${process.pid}.${Date.now()}.tmp`;
      writeFileSync(`${out}.map${suffix}`, map);
      writeFileSync(`${out}${suffix}`, `${code}//# sourceMappingURL=${name}.mjs.map\n`);
      writeFileSync(`${out}.inputs.json${suffix}`, JSON.stringify(inputs));
      renameSync(`${out}.map${suffix}`, `${out}.map`);
      renameSync(`${out}${suffix}`, out);
      renameSync(`${out}.inputs.json${suffix}`, `${out}.inputs.json`);
      return pathToFileURL(out).href;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

function cacheDirs() {
  const perCheckout = createHash('sha256').update(ROOT).digest('hex').slice(0, 12);
  return [join(ROOT, 'node_modules/.cache/flowloom'), join(tmpdir(), `flowloom-cli-${perCheckout}`)];
}

/** The bundle is fresh when it was built by this Node and launcher from sources that did not change since. */
function isFresh(inputsFile) {
  try {
    const recorded = JSON.parse(readFileSync(inputsFile, 'utf8'));
    if (recorded.format !== FORMAT_VERSION || recorded.node !== process.version) return false;
    for (const [file, stamp] of Object.entries(recorded.files)) {
      const stat = statSync(file);
      if (stat.mtimeMs !== stamp.mtimeMs || stat.size !== stamp.size) return false;
    }
    return true;
  } catch {
    return false;
  }
}

async function build(entry) {
  const { build: esbuild } = await import('esbuild');
  const result = await esbuild({
    entryPoints: [entry],
    bundle: true,
    write: false,
    outfile: join(ROOT, 'bundle.mjs'),
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Node's own resolution: no "module" field or condition, which Node ignores.
    mainFields: ['main'],
    conditions: [],
    sourcemap: 'external',
    sourcesContent: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [packagesOutside(), sourceLocations()],
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('.mjs'));
  const map = result.outputFiles.find((f) => f.path.endsWith('.map'));
  const files = {};
  for (const input of Object.keys(result.metafile.inputs)) {
    const file = join(ROOT, input);
    const { mtimeMs, size } = statSync(file);
    files[file] = { mtimeMs, size };
  }
  // The bundle lives in a cache folder: its source map names the sources by absolute URL.
  const sourceMap = JSON.parse(map.text);
  sourceMap.sources = sourceMap.sources.map((source) => pathToFileURL(join(ROOT, source)).href);
  return {
    code: js.text,
    map: JSON.stringify(sourceMap),
    inputs: { format: FORMAT_VERSION, node: process.version, files },
  };
}

/** Bare imports stay imports, of the file Node would load for the importing source. */
function packagesOutside() {
  return {
    name: 'packages-outside',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === 'resolving' || args.path.startsWith('node:')) return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: 'resolving',
        });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        // Node's built-in modules named without `node:`.
        if (resolved.external) return { path: args.path, external: true };
        // The workspaces' own packages (@flowloom/*) are sources: they go in the bundle.
        if (isWorkspaceSource(resolved.path)) return { path: resolved.path };
        return { path: resolved.path, external: true };
      });
    },
  };
}

function isWorkspaceSource(path) {
  return !relative(ROOT, path).split(/[\\/]/).includes('node_modules');
}

/** `import.meta.url` keeps naming the source file, so files found beside it (workers, protos) still are. */
function sourceLocations() {
  return {
    name: 'source-locations',
    setup(build) {
      build.onLoad({ filter: /\.[cm]?ts$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes('import.meta.url')) return undefined;
        const url = JSON.stringify(pathToFileURL(args.path).href);
        return {
          contents: source.replaceAll('import.meta.url', url),
          loader: 'ts',
          resolveDir: dirname(args.path),
        };
      });
    },
  };
}
