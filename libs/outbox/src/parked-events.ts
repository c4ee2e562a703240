/** An outbox event the bus refused for good, kept out of the relay's way until published again. */
export interface ParkedEvent {
  id: string;
  type: string;
  source: string;
  subject?: string;
  time: string;
  /** Size and SHA-256 (hex) of the event's RFC 8785 canonical JSON, as in its stand-in on the trail. */
  sizeBytes: number;
  sha256: string;
  /** Why the bus refused it, e.g. `MESSAGE_TOO_LARGE: ...`. */
  reason: string;
  parkedAt: string;
}

export interface RedriveOutcome {
  /** Events taken out of parking and handed to the relay again. */
  requeued: number;
  /** Of those, published now. */
  published: string[];
  /** Of those, refused again (still parked, with a new stand-in on the trail). */
  parkedAgain: string[];
  /** Of those, still waiting for the relay (the bus is away, or another replica is publishing). */
  pending: string[];
}

/** The parked events of an outbox: what an operator lists, and publishes again once the cause is fixed. */
export interface ParkedEvents {
  list(limit: number): Promise<ParkedEvent[]>;
  count(): Promise<number>;
  /** Publishes the given parked events again (all of them when `ids` is omitted). */
  redrive(ids?: readonly string[]): Promise<RedriveOutcome>;
}
