#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx registers an ESM loader, so there is no build step
// between `npm ci` and `npx flowloom`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
