import type { EventBus, EventHandler } from '@flowloom/bus';
import type { CloudEvent } from '@flowloom/contracts';

/** A bus port double: records what it accepted, and can be told to refuse or to hold a publish. */
export class RecordingBus implements EventBus {
  readonly accepted: CloudEvent[] = [];
  calls = 0;
  /** Publish calls numbered from 1 that throw. */
  failOn = new Set<number>();
  failAll = false;
  delayMs = 0;
  gate: Promise<void> | undefined;
  reachedGate: (() => void) | undefined;

  async publish(events: readonly CloudEvent[]): Promise<void> {
    this.calls++;
    if (this.failAll || this.failOn.has(this.calls)) throw new Error(`bus refused publish #${this.calls}`);
    if (this.gate) {
      this.reachedGate?.();
      await this.gate;
    }
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.accepted.push(...events);
  }

  async subscribe(_group: string, _handler: EventHandler): Promise<void> {}
  async close(): Promise<void> {}
}
