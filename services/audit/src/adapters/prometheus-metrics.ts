import { Counter, Gauge, type Registry } from '@flowloom/telemetry';
import type { AuditConsumerMetrics } from '../ports/metrics.js';

/** What the audit series read from the ledger. */
export interface LedgerGaugeSource {
  readonly size: number;
  /** Committed entries not yet in the search index: its attributes (filters), its words (text). */
  readonly indexBacklog: number;
  readonly wordsBacklog: number;
  latestCheckpointAt(): Promise<Date | undefined>;
}

/**
 * The audit service's Prometheus series: ledger size, append rate, checkpoint age, consumer
 * throughput. Registered once per process (on the gateway's registry in `flowloom up`).
 */
export function registerAuditMetrics(registry: Registry, ledger: LedgerGaugeSource): AuditConsumerMetrics {
  new Gauge({
    name: 'flowloom_audit_tree_size',
    help: 'Entries in the audit Merkle tree (committed tree size)',
    registers: [registry],
    collect() {
      this.set(ledger.size);
    },
  });
  new Gauge({
    name: 'flowloom_audit_index_behind_entries',
    help: 'Committed entries not yet searchable: part="attributes" for the filters, part="words" for full text (a text query waits for them)',
    labelNames: ['part'],
    registers: [registry],
    collect() {
      this.set({ part: 'attributes' }, ledger.indexBacklog);
      this.set({ part: 'words' }, ledger.wordsBacklog);
    },
  });
  new Gauge({
    name: 'flowloom_audit_checkpoint_age_seconds',
    help: 'Seconds since the latest signed checkpoint (-1: none yet); growing past the checkpoint interval means checkpoints are not being signed',
    registers: [registry],
    async collect() {
      try {
        const at = await ledger.latestCheckpointAt();
        this.set(at ? (Date.now() - at.getTime()) / 1000 : -1);
      } catch {
        // Unreadable while the database is down: the last value stays, and /metrics still answers.
      }
    },
  });
  const appended = new Counter({
    name: 'flowloom_audit_entries_appended_total',
    help: 'Entries appended to the audit ledger (redelivered events already in it are not counted)',
    registers: [registry],
  });
  const consumed = new Counter({
    name: 'flowloom_audit_events_consumed_total',
    help: 'Events the audit consumer received from the bus, redeliveries included',
    registers: [registry],
  });
  return {
    consumed(events, entries) {
      consumed.inc(events);
      appended.inc(entries);
    },
  };
}
