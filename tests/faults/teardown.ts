import { rmSync } from 'node:fs';
import type { Db } from '@flowloom/store';
import type { OwnKafka } from './engines.js';
import type { Service } from './services.js';

/** Stops what a fault test started, in order, whatever got started before a failure. */
export async function tearDown(parts: {
  services: readonly Service[];
  db?: Db | undefined;
  kafka?: OwnKafka | undefined;
  database?: { drop(): Promise<void> } | undefined;
  work?: string;
}): Promise<void> {
  for (const service of parts.services) await service.stop().catch(() => {});
  await parts.db?.close();
  await parts.kafka?.purge().catch((error: Error) => console.error(error.message));
  await parts.database?.drop();
  if (parts.work) rmSync(parts.work, { recursive: true, force: true });
}
