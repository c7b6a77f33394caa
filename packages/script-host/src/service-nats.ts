/**
 * A service's NATS connection: reconnects forever (connectNats), writes the
 * status changes worth a line to the service log, and knows whether it is
 * connected right now (readiness, publish back-pressure).
 */
import { connectNats, formatStatus, type NatsConnection } from '@wirescript/nats';
import type { Logger } from './log.ts';

export interface ServiceNats {
  readonly nc: NatsConnection;
  /** False between a disconnect and the reconnect, and after close (readiness, publish back-pressure). */
  readonly connected: boolean;
}

export interface ConnectServiceNatsOptions {
  url: string;
  /** Client name, `<service>/<replica>`. */
  name: string;
  log: Logger;
  onReconnect?(): void;
  onClose?(): void;
}

export async function connectServiceNats(o: ConnectServiceNatsOptions): Promise<ServiceNats> {
  let connected = false;
  const nc = await connectNats({
    url: o.url,
    name: o.name,
    onStatus: (st) => {
      if (st.type === 'disconnect') connected = false;
      if (st.type === 'reconnect') {
        connected = true;
        o.onReconnect?.();
      }
      if (st.type === 'close') {
        connected = false;
        o.onClose?.();
      }
      const line = formatStatus(st);
      if (line) o.log.info(line);
    },
  });
  connected = true;
  return {
    nc,
    get connected() {
      return connected;
    },
  };
}
