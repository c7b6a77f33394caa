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
export {
  startKubeApiServer,
  KubeApiServerError,
  type KubeApiServer,
  type KubeObject,
  type KubeKind,
  type StartKubeApiServerOptions,
} from './kube-api-server.ts';
export {
  dnsAnswer,
  startTcpdump, startTrafficServers, http1Calls, http2Calls, dnsQueries, connectRedis, redisCommands, readPcap, writePcap, flowOf, frameInConversation,
  type Tcpdump, type Call, type TrafficServers, type PcapRecord, type PcapContents, type FlowOf,
} from './traffic.ts';
