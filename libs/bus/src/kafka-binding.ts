import type { CloudEvent } from '@flowloom/contracts';

/**
 * The CloudEvents Kafka protocol binding, binary content mode: attributes travel as `ce_` headers,
 * the message value is the JSON `data`, and the key is the subject so that one job's events land on
 * one partition, in order.
 */
export interface KafkaRecord {
  key: string | null;
  value: string;
  headers: Record<string, string>;
}

export function toKafkaRecord(event: CloudEvent): KafkaRecord {
  const headers: Record<string, string> = {
    ce_specversion: event.specversion,
    ce_id: event.id,
    ce_source: event.source,
    ce_type: event.type,
    ce_time: event.time,
    'content-type': event.datacontenttype,
  };
  if (event.subject !== undefined) headers.ce_subject = event.subject;
  return { key: event.subject ?? null, value: JSON.stringify(event.data), headers };
}

function text(value: Buffer | string | (Buffer | string)[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/** Reads a record back; undefined when it is not a CloudEvent (foreign producers share topics). */
export function fromKafkaRecord(
  headers: Record<string, Buffer | string | (Buffer | string)[] | undefined>,
  value: Buffer | null,
): CloudEvent | undefined {
  const id = text(headers.ce_id);
  const type = text(headers.ce_type);
  const source = text(headers.ce_source);
  if (!id || !type || !source || text(headers.ce_specversion) !== '1.0') return undefined;
  let data: unknown = null;
  if (value && value.length > 0) {
    try {
      data = JSON.parse(value.toString('utf8'));
    } catch {
      return undefined;
    }
  }
  const subject = text(headers.ce_subject);
  return {
    specversion: '1.0',
    id,
    source,
    type,
    ...(subject !== undefined ? { subject } : {}),
    time: text(headers.ce_time) ?? new Date(0).toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

/** The prefix of every topic name unless configured otherwise. */
export const DEFAULT_TOPIC_PREFIX = 'flowloom';

/**
 * One topic per event family: `dev.flowloom.gateway.request.completed.v1` → `flowloom.gateway.request`.
 * Families keep related events ordered together while letting consumers subscribe narrowly. Another
 * prefix lets several installs (or test runs) share one Kafka cluster without seeing each other's events.
 */
export function topicFor(type: string, prefix: string = DEFAULT_TOPIC_PREFIX): string {
  const parts = type.split('.');
  if (parts.length < 5 || parts[0] !== 'dev' || parts[1] !== 'flowloom') return `${prefix}.other`;
  return `${prefix}.${parts[2]}.${parts[3]}`;
}
