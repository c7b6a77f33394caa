export { initTelemetry, TelemetryError, type Telemetry, type TelemetryOptions } from './telemetry.ts';
export {
  injectContext,
  extractContext,
  startProducerSpan,
  withConsumerSpan,
  type HeaderReader,
  type HeaderWriter,
  type SpanHelperOptions,
} from './propagation.ts';
