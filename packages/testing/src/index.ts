export {
  startNatsServer,
  findNatsServer,
  freePort,
  NatsServerNotFoundError,
  NatsServerStartError,
  type NatsServer,
  type StartNatsServerOptions,
} from './nats-server.ts';
