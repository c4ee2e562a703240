import { Gauge, type Registry } from 'prom-client';

/** What an embedded database thread reports of its memory, in bytes (structural: telemetry does not depend on the store). */
export type EmbeddedDbMemoryView = Record<'heapTotal' | 'heapUsed' | 'external' | 'wasm', number>;

/**
 * `flowloom_embedded_db_memory_bytes{part}`: the embedded database's thread beside the process's
 * resident memory and the main thread's heap (the default nodejs_* series), so growth can be told
 * apart: its WASM memory (PostgreSQL's heap and buffers, never shrinks) and its own V8 heap.
 */
export function registerEmbeddedDbGauges(
  read: () => Promise<EmbeddedDbMemoryView> | undefined,
  registry: Registry,
): void {
  new Gauge({
    name: 'flowloom_embedded_db_memory_bytes',
    help: 'Memory of the embedded database thread: part="wasm" is PostgreSQL\'s WASM memory (it only grows), heap_total/heap_used the thread\'s V8 heap, external its buffers outside that heap',
    labelNames: ['part'],
    registers: [registry],
    async collect() {
      try {
        const memory = await read();
        if (!memory) return;
        this.set({ part: 'wasm' }, memory.wasm);
        this.set({ part: 'heap_total' }, memory.heapTotal);
        this.set({ part: 'heap_used' }, memory.heapUsed);
        this.set({ part: 'external' }, memory.external);
      } catch {
        // The database thread stopped: the last reading stays, and /metrics still answers.
      }
    },
  });
}
