export { type BusHealthView, registerBusGauges } from './bus-gauges.js';
export { type EmbeddedDbMemoryView, registerEmbeddedDbGauges } from './embedded-db-gauges.js';
export { createLogger, type Logger, type LoggerOptions, scrubSecrets } from './logger.js';
export { Counter, createRegistry, Gauge, Histogram, Registry } from './metrics.js';
