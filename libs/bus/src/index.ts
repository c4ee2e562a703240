export type { BatchEventHandler, BusHealth, EventBus, EventHandler } from './bus.js';
export type { ConsumerLag } from './consumer-lag.js';
export { busCheck } from './health.js';
export { InProcessBus } from './in-process.js';
export { KafkaBus, type KafkaBusOptions } from './kafka.js';
export { DEFAULT_TOPIC_PREFIX, fromKafkaRecord, toKafkaRecord, topicFor } from './kafka-binding.js';
export { type Parking, parkingsOf } from './parkings.js';
export {
  EventsRefusedError,
  isEventsRefused,
  publishExceptRefused,
  type RefusedEvent,
} from './refused-events.js';
