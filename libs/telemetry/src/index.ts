export { type BusHealthView, registerBusGauges } from './bus-gauges.js';
export { createLogger, type Logger, type LoggerOptions, scrubSecrets } from './logger.js';
export { Counter, createRegistry, Gauge, Histogram, Registry } from './metrics.js';
