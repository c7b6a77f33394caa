/**
 * A recording TCP proxy on loopback: real clients talk to real servers through
 * it, and it keeps every chunk each side sent, in order, with its time. Tests
 * feed the recorded byte streams to the protocol dissectors (real traffic
 * without needing packet capture).
 */
import net from 'node:net';

export interface RecordedChunk {
  /** 0: client -> server, 1: server -> client. */
  dir: 0 | 1;
  data: Buffer;
  tsMs: number;
}

export interface RecordedConnection {
  id: number;
  chunks: RecordedChunk[];
  /** Resolves when both sides have closed. */
  closed: Promise<void>;
}

export interface TcpRecorder {
  /** Port to point the client at. */
  port: number;
  connections: RecordedConnection[];
  /** All chunks of one connection concatenated per direction. */
  bytes(connection: number, dir: 0 | 1): Buffer;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 forwarding to `target` (host, port). */
export async function startTcpRecorder(target: { host?: string; port: number }): Promise<TcpRecorder> {
  const connections: RecordedConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const conn: RecordedConnection = { id: connections.length, chunks: [], closed: Promise.resolve() };
    connections.push(conn);
    const upstream = net.connect({ host: target.host ?? '127.0.0.1', port: target.port });
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (d: Buffer) => {
      conn.chunks.push({ dir: 0, data: Buffer.from(d), tsMs: Date.now() });
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      conn.chunks.push({ dir: 1, data: Buffer.from(d), tsMs: Date.now() });
      client.write(d);
    });
    const ended = (s: net.Socket) => new Promise<void>((r) => s.once('close', () => { sockets.delete(s); r(); }));
    conn.closed = Promise.all([ended(client), ended(upstream)]).then(() => {});
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections,
    bytes(connection, dir) {
      const c = connections[connection];
      if (!c) throw new Error(`no recorded connection ${connection}`);
      return Buffer.concat(c.chunks.filter((x) => x.dir === dir).map((x) => x.data));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
