/** How far one consumer group is behind on one partition. */
export interface ConsumerLag {
  /** The Kafka group id (with the topic prefix when one is configured). */
  group: string;
  topic: string;
  partition: number;
  /** Messages in the partition the group has not committed yet (log end offset minus committed offset). */
  messages: number;
}

/** A partition's offsets as Kafka's admin API gives them (strings of integers). */
export interface PartitionEnds {
  partition: number;
  /** The log end offset (the next offset to be written). */
  high: string;
  /** The first offset still in the log. */
  low: string;
}

/**
 * A group's lag on each partition of a topic. A partition without a committed offset counts from the
 * first offset still in the log, where a group subscribed from the beginning starts; a committed
 * offset behind the log start (retention deleted the rest) counts from the log start too.
 */
export function lagOf(
  group: string,
  topic: string,
  ends: readonly PartitionEnds[],
  committed: ReadonlyMap<number, string>,
): ConsumerLag[] {
  return ends.map(({ partition, high, low }) => {
    const start = Number(low);
    const offset = Number(committed.get(partition) ?? '-1');
    const from = offset < 0 ? start : Math.max(offset, start);
    return { group, topic, partition, messages: Math.max(0, Number(high) - from) };
  });
}
