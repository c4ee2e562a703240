#!/usr/bin/env node
// Runs the CLI from its TypeScript sources with no build step between `npm ci` and `npx flowloom`:
// from a cached bundle of them (bundle.mjs says why), or through tsx when no bundle can be built.
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
let cli;
try {
  const { bundled } = await import('./bundle.mjs');
  const url = await bundled(entry);
  // Stack traces name the TypeScript sources, as they do under tsx.
  process.setSourceMapsEnabled(true);
  cli = await import(url);
} catch (error) {
  process.stderr.write(
    `flowloom: running from the sources through tsx (the bundle could not be built: ${error.message})\n`,
  );
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(entry);
}
process.exitCode = await cli.main(process.argv.slice(2));
