export { ConfigError, ENV_VARIABLES, type LoadOptions, loadConfig, providerApiKey } from './load.js';
export * from './schema.js';
