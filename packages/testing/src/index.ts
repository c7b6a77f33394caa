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
