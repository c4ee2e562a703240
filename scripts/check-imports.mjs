#!/usr/bin/env node
// Enforces DESIGN.md's import rules: libs never import services; services never import each other
// (except the `flowloom` CLI, which composes everything); no deep /src/ imports across packages; and
// inside a service, entry points → app → domain, with only main.ts choosing adapters.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const SERVICE_PACKAGES = new Map(
  readdirSync(join(root, 'services')).map((dir) => [
    JSON.parse(readFileSync(join(root, 'services', dir, 'package.json'), 'utf8')).name,
    dir,
  ]),
);
const IO_LIBRARIES = [
  'fastify',
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  'kafkajs',
  'pg',
  '@electric-sql/pglite',
  'ioredis',
  'undici',
  'mongodb',
  'neo4j-driver',
  '@elastic/elasticsearch',
  '@influxdata/influxdb-client',
  'prom-client',
  'pino',
];

function* files(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (path.endsWith('.ts')) yield path;
  }
}

const importPattern =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const violations = [];

for (const top of ['libs', 'services']) {
  for (const file of files(join(root, top))) {
    const rel = relative(root, file);
    const [, pkg, area] = rel.split('/');
    const inSrc = area === 'src';
    const layer = inSrc ? rel.split('/')[3] : undefined;
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(importPattern)) {
      const spec = match[1] ?? match[2];
      const fail = (why) => violations.push(`${rel}: imports "${spec}": ${why}`);
      if (/^@flowloom\/[^/]+\/src\//.test(spec))
        fail('deep import into another package; use its exports map');
      const targetService = SERVICE_PACKAGES.get(spec.split('/').slice(0, 2).join('/'));
      if (top === 'libs' && targetService) fail('libs never import services');
      if (top === 'services' && targetService && targetService !== pkg && pkg !== 'flowloom') {
        fail('services do not import each other; use gRPC clients or contracts events');
      }
      if (top !== 'services' || !inSrc || file.endsWith('.test.ts')) continue;
      const io = IO_LIBRARIES.some((lib) => spec === lib || spec.startsWith(`${lib}/`));
      if ((layer === 'app' || layer === 'domain' || layer === 'ports') && io)
        fail(`${layer}/ stays free of I/O libraries`);
      if (layer === 'domain' && /^\.\.\/(app|http|grpc|consumers|adapters|ports)\//.test(spec))
        fail('domain/ imports only domain/');
      if (layer === 'app' && /^\.\.\/(http|grpc|consumers|adapters)\//.test(spec))
        fail('app/ imports only ports/ and domain/');
      if (
        (layer === 'http' || layer === 'grpc' || layer === 'consumers') &&
        /^\.\.\/(\.\.\/)?adapters\//.test(spec)
      ) {
        fail('entry points do not choose adapters; main.ts does');
      }
    }
  }
}

if (violations.length > 0) {
  console.error(`Import rules broken (DESIGN.md, Layout):\n${violations.map((v) => `  - ${v}`).join('\n')}`);
  process.exit(1);
}
console.log('import rules: ok');
