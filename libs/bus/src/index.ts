export type { EventBus, EventHandler } from './bus.js';
export { InProcessBus } from './in-process.js';
