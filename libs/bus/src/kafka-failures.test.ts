import { describe, expect, it } from 'vitest';
import { isBrokerFailure, messageRefusalOf, reconnectDelayMs } from './kafka-failures.js';

const named = (name: string, extra: Record<string, unknown> = {}, cause?: unknown): Error =>
  Object.assign(new Error(name, cause === undefined ? undefined : { cause }), { name, ...extra });

describe('isBrokerFailure', () => {
  it('when kafkajs could not connect, timed out or ran out of retries, then it is a broker failure', () => {
    expect(isBrokerFailure(named('KafkaJSConnectionError'))).toBe(true);
    expect(isBrokerFailure(named('KafkaJSRequestTimeoutError'))).toBe(true);
    expect(isBrokerFailure(named('KafkaJSNumberOfRetriesExceeded'))).toBe(true);
  });

  it('when the broker failure is wrapped, then it is found through the causes', () => {
    const wrapped = new Error('Cannot reach Kafka', { cause: named('KafkaJSConnectionClosedError') });
    expect(isBrokerFailure(wrapped)).toBe(true);
  });

  it('when a protocol error is retriable (no leader yet), then it is a broker failure; a refused message is not', () => {
    expect(isBrokerFailure(named('KafkaJSProtocolError', { retriable: true }))).toBe(true);
    expect(isBrokerFailure(named('KafkaJSProtocolError', { retriable: false }))).toBe(false);
  });

  it('when a handler failed (a database error), then it is not a broker failure', () => {
    expect(isBrokerFailure(new Error('connection terminated unexpectedly'))).toBe(false);
    expect(isBrokerFailure('a string')).toBe(false);
  });
});

describe('messageRefusalOf', () => {
  const protocol = (type: string, retriable: boolean) =>
    named('KafkaJSProtocolError', { type, retriable }, undefined);

  it('when the broker refuses the records themselves (too large, invalid), then it names the refusal', () => {
    expect(messageRefusalOf(protocol('MESSAGE_TOO_LARGE', false))).toBe(
      'MESSAGE_TOO_LARGE: KafkaJSProtocolError',
    );
    expect(messageRefusalOf(protocol('INVALID_RECORD', false))).toMatch(/^INVALID_RECORD: /);
    expect(messageRefusalOf(protocol('RECORD_LIST_TOO_LARGE', false))).toMatch(/^RECORD_LIST_TOO_LARGE: /);
  });

  it('when kafkajs gave up retrying a corrupt message, then the wrapped refusal is found', () => {
    const exhausted = named('KafkaJSNumberOfRetriesExceeded', {}, protocol('CORRUPT_MESSAGE', true));
    expect(messageRefusalOf(exhausted)).toMatch(/^CORRUPT_MESSAGE: /);
    expect(
      messageRefusalOf(named('KafkaJSNonRetriableError', {}, protocol('MESSAGE_TOO_LARGE', false))),
    ).toMatch(/^MESSAGE_TOO_LARGE/);
  });

  it('when the brokers are unreachable, electing, or refuse a setting, then it is no refusal of the records', () => {
    expect(messageRefusalOf(named('KafkaJSConnectionError'))).toBeUndefined();
    expect(messageRefusalOf(protocol('NOT_LEADER_FOR_PARTITION', true))).toBeUndefined();
    expect(messageRefusalOf(protocol('INVALID_REQUIRED_ACKS', false))).toBeUndefined();
    expect(messageRefusalOf(protocol('TOPIC_AUTHORIZATION_FAILED', false))).toBeUndefined();
    // The type alone is not enough: a handler's own error with the same word is not Kafka's.
    expect(messageRefusalOf(named('Error', { type: 'MESSAGE_TOO_LARGE' }))).toBeUndefined();
    expect(messageRefusalOf('MESSAGE_TOO_LARGE')).toBeUndefined();
  });
});

describe('reconnectDelayMs', () => {
  const options = { minMs: 200, maxMs: 3_000 };

  it('when attempts fail in a row, then the delay doubles up to the cap, never below half of it', () => {
    expect(reconnectDelayMs(1, options, () => 0)).toBe(100);
    expect(reconnectDelayMs(1, options, () => 1)).toBe(200);
    expect(reconnectDelayMs(3, options, () => 0)).toBe(400);
    expect(reconnectDelayMs(3, options, () => 1)).toBe(800);
    expect(reconnectDelayMs(20, options, () => 0)).toBe(1_500);
    expect(reconnectDelayMs(20, options, () => 1)).toBe(3_000);
  });

  it('when replicas retry at once, then their delays spread over the upper half', () => {
    const delays = new Set(Array.from({ length: 200 }, () => reconnectDelayMs(5, options)));
    expect(delays.size).toBeGreaterThan(50);
    for (const d of delays) expect(d >= 1_500 && d <= 3_000).toBe(true);
  });
});
