export { configSchema, type Config, type ConfigInput } from './schema.js';
export { loadConfig, ConfigError, DEV_SECRET_MARKER, type LoadedConfig, type LoadConfigOptions } from './load.js';
