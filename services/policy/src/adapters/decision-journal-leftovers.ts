import { existsSync, readdirSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { DecisionRecord, Intervention } from '@flowloom/contracts';
import type { DecisionStore } from '../ports/decision-store.js';

type JournalLine =
  | { kind: 'd'; record: DecisionRecord }
  | { kind: 'i'; eventId: string; at: string; intervention: Intervention };

/**
 * Versions before 2026-12-07 acknowledged embedded decisions once they were in a journal folder
 * (`<data dir>/policy-decisions`) and wrote them to the database later. A crash could leave
 * segments there; this writes them to the store and removes the folder. Now the decisions consumer
 * acknowledges an event only once the store has it, and the outbox redelivers what a crash cut off.
 * Returns how many decisions and interventions were written.
 */
export async function writeLeftoverDecisions(store: DecisionStore, dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  let written = 0;
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()) {
    const records: DecisionRecord[] = [];
    const interventions: Array<{ eventId: string; at: Date; intervention: Intervention }> = [];
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      let entry: JournalLine;
      try {
        entry = JSON.parse(line) as JournalLine;
      } catch {
        continue; // a torn last line: it was never acknowledged
      }
      if (entry.kind === 'd') records.push(entry.record);
      else
        interventions.push({
          eventId: entry.eventId,
          at: new Date(entry.at),
          intervention: entry.intervention,
        });
    }
    if (records.length > 0) await store.saveMany(records);
    if (interventions.length > 0) await store.saveInterventions(interventions);
    written += records.length + interventions.length;
    unlinkSync(join(dir, file));
  }
  if (readdirSync(dir).length === 0) rmdirSync(dir);
  return written;
}
