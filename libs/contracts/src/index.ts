export * from './audit-events.js';
export { type CloudEvent, cloudEventSchema, createEvent } from './cloudevent.js';
export * from './gateway-events.js';
export * from './outbox-events.js';
export * from './policy-bundle.js';
export * from './policy-events.js';
export { nameBasedUuid, UUID_PATTERN, uuidv7 } from './uuid.js';
