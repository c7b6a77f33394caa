/**
 * Liveness and readiness over HTTP for Kubernetes probes: GET /livez and
 * GET /readyz answer 200 or 503 with the failing checks in the body. Checks
 * are real: readiness means NATS connected and the script set applied;
 * liveness means the event loop is turning and the dispatch loop is not
 * wedged. A listen error (port taken) rejects start() with a clear message.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthCheck {
  name: string;
  /** null when healthy, else why not. */
  check(): string | null;
}

export class HealthError extends Error {
  override name = 'HealthError';
}

export class HealthServer {
  private server: http.Server | null = null;
  private readonly live: HealthCheck[] = [];
  private readonly ready: HealthCheck[] = [];
  private lagTimer: NodeJS.Timeout | null = null;
  private lastTick = Date.now();
  /** Event loop stalls longer than this fail liveness, ms. */
  private readonly maxLoopStallMs: number;

  constructor(opts: { maxLoopStallMs?: number } = {}) {
    this.maxLoopStallMs = opts.maxLoopStallMs ?? 30_000;
    this.live.push({
      name: 'event-loop',
      check: () => {
        const stall = Date.now() - this.lastTick;
        return stall > this.maxLoopStallMs ? `event loop stalled for ${stall} ms` : null;
      },
    });
  }

  addLiveness(c: HealthCheck): this {
    this.live.push(c);
    return this;
  }

  addReadiness(c: HealthCheck): this {
    this.ready.push(c);
    return this;
  }

  private evaluate(checks: readonly HealthCheck[]): { ok: boolean; body: string } {
    const failures: string[] = [];
    for (const c of checks) {
      let why: string | null;
      try {
        why = c.check();
      } catch (err) {
        why = `check threw: ${(err as Error).message}`;
      }
      if (why !== null) failures.push(`${c.name}: ${why}`);
    }
    return { ok: failures.length === 0, body: failures.length === 0 ? 'ok\n' : `${failures.join('\n')}\n` };
  }

  /** Listens on host:port (port 0 = any free port); resolves to the bound port. */
  async start(host: string, port: number): Promise<number> {
    this.lagTimer = setInterval(() => (this.lastTick = Date.now()), 1000);
    this.lagTimer.unref();
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const r = path === '/livez' ? this.evaluate(this.live)
        : path === '/readyz' ? this.evaluate([...this.live, ...this.ready])
        : null;
      if (r === null) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: use /livez or /readyz\n');
        return;
      }
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain' }).end(r.body);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new HealthError(`cannot serve health checks on ${host}:${port} (HEALTH_PORT/HEALTH_HOST): ${err.message}`, { cause: err })));
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (this.lagTimer) clearInterval(this.lagTimer);
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
