import { Kafka, logLevel } from 'kafkajs';

/** Deletes the topics a test created under its own prefix on a shared broker. */
export async function deleteTopicsUnder(prefix: string, brokers: readonly string[]): Promise<void> {
  const admin = new Kafka({ clientId: prefix, brokers: [...brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.disconnect();
  }
}
