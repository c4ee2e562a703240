// Creates an embedded database folder (initdb) in a process of its own: initdb's WASM heap is large
// (~850 MB RSS) and a process never returns that memory, so the server must not run it itself.
import { PGlite } from '@electric-sql/pglite';

const [dataDir, settings] = process.argv.slice(2);
const pg = new PGlite({ dataDir, postgresqlconf: JSON.parse(settings ?? '[]') });
await pg.waitReady;
await pg.close();
