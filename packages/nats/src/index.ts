export { connectNats, drainAndClose, formatStatus, NatsConnectError, NatsCloseError, type ConnectNatsOptions } from './connection.ts';
export { publishWithTrace, withMsgSpan, messagingAttributes, type PublishWithTraceOptions } from './publish.ts';
export { openKv, ensureStream, KvError, StreamError, type OpenKvOptions, type EnsureStreamOptions } from './jetstream.ts';
export { BoundedQueue, QueueHandlerError, type DrainOptions } from './bounded-queue.ts';
// The nats.js types services handle, so they need not depend on nats.js directly.
export { headers } from '@nats-io/transport-node';
export type { Msg, MsgHdrs, NatsConnection, Status, Subscription } from '@nats-io/transport-node';
export type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
export type { StreamInfo } from '@nats-io/jetstream';
