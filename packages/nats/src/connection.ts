import { connect, type NatsConnection, type NodeConnectionOptions, type Status } from '@nats-io/transport-node';
import { redactUrl } from '@wirescript/config';

export class NatsConnectError extends Error {
  override readonly name = 'NatsConnectError';
}

export class NatsCloseError extends Error {
  override readonly name = 'NatsCloseError';
}

export interface ConnectNatsOptions {
  /** Server URL(s), e.g. the NATS_URL config value. */
  url: string | string[];
  /** Client name, shown by the server's monitoring (`connz`): use `<service>/<replica>`. */
  name: string;
  /** Called for every connection status event; default: `log(formatStatus(s))` for the ones worth a line. */
  onStatus?: (status: Status) => void;
  /** Where the default status handler writes (default: stderr). */
  log?: (line: string) => void;
  /**
   * Keep retrying when the first connect fails (default false: fail fast
   * with a clear error, so a wrong NATS_URL is reported, not waited on).
   */
  waitOnFirstConnect?: boolean;
  /** Base wait between reconnect attempts, ms (default 1000). */
  reconnectTimeWait?: number;
  /** Random extra wait added to each attempt, ms (default 1000), so replicas do not reconnect in lockstep. */
  reconnectJitter?: number;
  /** Timeout of one connection attempt, ms (default 5000). */
  timeout?: number;
  /** Anything else nats.js accepts (auth, TLS, ...); wins over the above. */
  extra?: Partial<NodeConnectionOptions>;
}

/** One log line for the status events an operator cares about; undefined for the chatty ones. */
export function formatStatus(s: Status): string | undefined {
  switch (s.type) {
    case 'disconnect':
      return `nats: disconnected from ${s.server}`;
    case 'reconnect':
      return `nats: reconnected to ${s.server}`;
    case 'error':
      return `nats: server error: ${s.error.message}`;
    case 'ldm':
      return `nats: server ${s.server} entered lame duck mode, will move to another`;
    case 'staleConnection':
      return 'nats: stale connection (pings unanswered), reconnecting';
    case 'slowConsumer':
      return `nats: slow consumer on ${s.sub.getSubject()} (${s.pending} messages pending)`;
    case 'close':
      return 'nats: connection closed';
    default:
      // ping, update, reconnecting (once per attempt), forceReconnect: too chatty for a log line.
      return undefined;
  }
}

function describeServers(url: string | string[]): string {
  return (Array.isArray(url) ? url : [url]).map(redactUrl).join(',');
}

/**
 * Connects with reconnects that never give up (a service outlives NATS
 * restarts) and jittered waits, and reports status changes to `onStatus`.
 * Throws NatsConnectError naming the server when the first connect fails.
 */
export async function connectNats(opts: ConnectNatsOptions): Promise<NatsConnection> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const onStatus =
    opts.onStatus ??
    ((s: Status) => {
      const line = formatStatus(s);
      if (line !== undefined) log(line);
    });
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.url,
      name: opts.name,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWait ?? 1000,
      reconnectJitter: opts.reconnectJitter ?? 1000,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
      timeout: opts.timeout ?? 5000,
      ...opts.extra,
    });
  } catch (err) {
    throw new NatsConnectError(`cannot connect to NATS at ${describeServers(opts.url)}: ${(err as Error).message}`, { cause: err });
  }
  void (async () => {
    for await (const s of nc.status()) {
      try {
        onStatus(s);
      } catch (err) {
        // A broken status handler must not stop status reporting (nor crash the process).
        log(`nats: status handler failed: ${(err as Error).message}`);
      }
    }
  })();
  return nc;
}

/**
 * Drains (subscriptions finish what they have, pending publishes are flushed)
 * and closes; past `timeoutMs` it closes without waiting. Resolves true if
 * the drain completed, false if it timed out or the connection was already closed.
 */
export async function drainAndClose(nc: NatsConnection, timeoutMs = 5000): Promise<boolean> {
  if (nc.isClosed()) return false;
  if (nc.isDraining()) {
    // Someone else is draining: wait for it, within our budget.
    return waitClosed(nc, timeoutMs);
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([nc.drain().then(() => 'drained' as const), timedOut]);
    if (outcome === 'drained') return true;
    await nc.close();
    return false;
  } catch (err) {
    if (nc.isClosed()) return false;
    await nc.close();
    throw new NatsCloseError(`draining the NATS connection failed: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

async function waitClosed(nc: NatsConnection, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([nc.closed().then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') await nc.close();
  return outcome === 'closed';
}
