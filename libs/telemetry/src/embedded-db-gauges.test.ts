import { describe, expect, it } from 'vitest';
import { registerEmbeddedDbGauges } from './embedded-db-gauges.js';
import { createRegistry } from './metrics.js';

describe('embedded database memory gauges', () => {
  it('when /metrics is read, then each part of the database thread’s memory is a series', async () => {
    const registry = createRegistry();
    registerEmbeddedDbGauges(
      async () => ({ wasm: 134_217_728, heapTotal: 20_000_000, heapUsed: 12_000_000, external: 1_000 }),
      registry,
    );
    const text = await registry.metrics();
    expect(text).toContain('flowloom_embedded_db_memory_bytes{part="wasm"} 134217728');
    expect(text).toContain('flowloom_embedded_db_memory_bytes{part="heap_total"} 20000000');
    expect(text).toContain('flowloom_embedded_db_memory_bytes{part="heap_used"} 12000000');
    expect(text).toContain('flowloom_embedded_db_memory_bytes{part="external"} 1000');
  });

  it('when the database thread cannot answer, then /metrics still answers with the other series', async () => {
    const registry = createRegistry();
    registerEmbeddedDbGauges(() => Promise.reject(new Error('The embedded database stopped')), registry);
    const text = await registry.metrics();
    expect(text).toContain('flowloom_process_resident_memory_bytes');
    expect(text).not.toContain('flowloom_embedded_db_memory_bytes{');
  });

  it('when the database is not an embedded one, then no part is reported', async () => {
    const registry = createRegistry();
    registerEmbeddedDbGauges(() => undefined, registry);
    expect(await registry.metrics()).not.toContain('flowloom_embedded_db_memory_bytes{');
  });
});
