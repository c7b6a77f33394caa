export {
  startNatsServer,
  findNatsServer,
  freePort,
  NatsServerNotFoundError,
  NatsServerStartError,
  type NatsServer,
  type StartNatsServerOptions,
} from './nats-server.ts';
export { makeHttpItem, makeHttpItemsJsonl, countByStatus, rng, type HttpItem } from './items.ts';
export { putScriptSet } from './scripts-kv.ts';
export { startTcpRecorder, type TcpRecorder, type RecordedChunk, type RecordedConnection } from './tcp-recorder.ts';
