export { ConfigError, ConfigSchemaError, type ConfigIssue } from './errors.ts';
export {
  defineConfig,
  vars,
  parseDuration,
  formatDuration,
  redactUrl,
  InvalidValueError,
  type AnyVarSpec,
  type Config,
  type JsonObject,
  type Kind,
  type Presence,
  type Schema,
  type SpecValue,
  type VarSpec,
} from './schema.ts';
export { loadConfig, describeConfig, configTable, redactedConfig, type Env } from './load.ts';
export { commonConfig, telemetryConfig, engineConfig, type CommonConfig, type TelemetryConfig, type EngineConfig } from './common.ts';
