export type { BatchEventHandler, EventBus, EventHandler } from './bus.js';
export { InProcessBus } from './in-process.js';
export { KafkaBus, type KafkaBusOptions } from './kafka.js';
export { DEFAULT_TOPIC_PREFIX, fromKafkaRecord, toKafkaRecord, topicFor } from './kafka-binding.js';
