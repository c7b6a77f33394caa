/**
 * Live capture on loopback: the highest sustained request rate at which no
 * call is missed.
 *
 * Three processes, so the capture has its event loop to itself:
 *  - server (child): node:http, HTTP/1.1 keep-alive, ~300-byte JSON replies;
 *  - load generator (child): raw keep-alive sockets, one request in flight per
 *    socket (no pipelining), paced to an offered rate; it counts the requests
 *    it saw completed (the ground truth);
 *  - capture (this process): LiveCapture on `lo` (filter `tcp port <port>`,
 *    a big kernel capture buffer) -> CapturePipeline -> items built and
 *    JSON.stringify'd, as the capture service does.
 * The offered rate steps up; each step's requests carry a path prefix of
 * their own (/s<step>/...), so items are attributed to steps. A step ends when
 * the generator's requests are all answered and the capture has gone quiet.
 * Stepping stops after the first step that misses calls (or drops packets),
 * or when the generator cannot reach the offered rate.
 *
 * On a 2-core machine the server, the generator and the capture share the
 * cores: the rates are floors of what a capture node would do.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CapturePipeline } from '../services/capture/src/pipeline.ts';
import { LiveCapture } from '../services/capture/src/live/cap-source.ts';

export interface LiveBenchOptions {
  /** Offered rates, requests/s, in order (default 2k, 5k, 10k, 15k, 20k, 30k, 40k, 50k). */
  steps?: number[];
  /** Seconds per step (default 3). */
  seconds?: number;
  /** Kernel capture buffer, MiB (default 256). */
  bufferMb?: number;
  /** Keep-alive connections of the generator (default: rate / 250, between 8 and 128). */
  connections?: number;
  device?: string;
}

interface StepRequest {
  type: 'step';
  port: number;
  step: number;
  rate: number;
  seconds: number;
  connections: number;
}

interface StepReport {
  type: 'done';
  step: number;
  sent: number;
  completed: number;
  socketErrors: number;
  /** Requests still unanswered when the generator gave up waiting (bounded wait). */
  unanswered: number;
  /** Seconds from the first request to the last response. */
  activeSec: number;
  cpuSec: number;
  /** Largest number of requests the pacer was behind schedule (no free connection). */
  maxBehind: number;
  p50Ms: number;
  p99Ms: number;
}

type CpuReport = { type: 'cpu'; cpuSec: number };

// ---------------------------------------------------------------------------
// Child: server
// ---------------------------------------------------------------------------

function serverMain(): void {
  const bodies: Buffer[] = [];
  for (let i = 0; i < 16; i++) {
    bodies.push(Buffer.from(JSON.stringify({
      id: 10_000 + i, name: `item-${i}`, price: 12.5 + i, currency: 'EUR', stock: 40 + i, tags: ['bench', 'loopback', `t${i}`],
      updatedAt: '2025-06-13T10:00:00Z', links: { self: `/api/v1/items/${10_000 + i}`, owner: `/api/v1/users/${i}` },
      description: 'A realistic-looking JSON reply of about three hundred bytes, as an API would return.',
    })));
  }
  let n = 0;
  const server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const body = bodies[n++ & 15];
      res.writeHead(200, {
        'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store',
        'X-Request-Id': String(req.headers['x-request-id'] ?? ''),
      });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send!({ type: 'ready', port: (server.address() as net.AddressInfo).port }));
  process.on('message', (m: { type: string }) => {
    if (m.type === 'cpu') {
      const c = process.cpuUsage();
      process.send!({ type: 'cpu', cpuSec: (c.user + c.system) / 1e6 } satisfies CpuReport);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------
// Child: load generator
// ---------------------------------------------------------------------------

const CRLFCRLF = Buffer.from('\r\n\r\n');

interface Client {
  sock: net.Socket;
  buf: Buffer | null;
  busy: boolean;
  sentAt: number;
}

async function runStep(s: StepRequest): Promise<StepReport> {
  const cpu0 = process.cpuUsage();
  const r: StepReport = { type: 'done', step: s.step, sent: 0, completed: 0, socketErrors: 0, unanswered: 0, activeSec: 0, cpuSec: 0, maxBehind: 0, p50Ms: 0, p99Ms: 0 };
  const latencies: number[] = [];
  const free: Client[] = [];
  const clients: Client[] = [];
  let t0 = 0;
  let tLast = 0;
  let issuing = true;
  let wake: (() => void) | null = null;
  const postBody = JSON.stringify({ sku: 'A-1001', qty: 3, note: 'bench order, about a hundred bytes of JSON body' });

  const issue = (c: Client): void => {
    const i = r.sent++;
    const post = i % 5 === 4;
    const path = post ? `/s${s.step}/api/v1/orders` : `/s${s.step}/api/v1/items/${10_000 + (i % 5000)}?fields=name,price`;
    const head =
      `${post ? 'POST' : 'GET'} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nUser-Agent: wirescript-bench/1.0\r\nAccept: application/json\r\n` +
      `X-Request-Id: s${s.step}-${i}\r\n` + (post ? `Content-Type: application/json\r\nContent-Length: ${postBody.length}\r\n\r\n${postBody}` : '\r\n');
    c.busy = true;
    c.sentAt = performance.now();
    c.sock.write(head);
  };
  const due = (now: number): number => (issuing ? Math.floor(((now - t0) / 1000) * s.rate) : 0);
  const pump = (): void => {
    const now = performance.now();
    if (issuing && now - t0 >= s.seconds * 1000) issuing = false;
    if (!issuing) return;
    const d = due(now);
    while (r.sent < d && free.length > 0) issue(free.pop()!);
    if (d - r.sent > r.maxBehind) r.maxBehind = d - r.sent;
  };
  const onResponse = (c: Client): void => {
    const now = performance.now();
    r.completed++;
    tLast = now;
    latencies.push(now - c.sentAt);
    c.busy = false;
    free.push(c);
    pump();
    if (wake && !issuing && clients.every((x) => !x.busy)) wake();
  };

  await Promise.all(Array.from({ length: s.connections }, () => new Promise<void>((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: s.port });
    const c: Client = { sock, buf: null, busy: false, sentAt: 0 };
    sock.setNoDelay(true);
    sock.on('connect', () => { clients.push(c); free.push(c); resolve(); });
    sock.on('error', (e) => { r.socketErrors++; reject(e); });
    sock.on('data', (d: Buffer) => {
      let b = c.buf === null ? d : Buffer.concat([c.buf, d]);
      for (;;) {
        const end = b.indexOf(CRLFCRLF);
        if (end < 0) break;
        const m = /content-length:\s*(\d+)/i.exec(b.toString('latin1', 0, end));
        const total = end + 4 + (m ? Number(m[1]) : 0);
        if (b.length < total) break;
        b = b.subarray(total);
        onResponse(c);
      }
      c.buf = b.length > 0 ? b : null;
    });
  })));

  t0 = performance.now();
  const timer = setInterval(pump, 1);
  await new Promise<void>((resolve) => {
    wake = resolve;
    setTimeout(() => { issuing = false; if (clients.every((x) => !x.busy)) resolve(); }, s.seconds * 1000 + 5);
    // Bounded: whatever is unanswered 5 s after the window is counted, not waited for.
    setTimeout(resolve, s.seconds * 1000 + 5000);
  });
  clearInterval(timer);
  issuing = false;
  r.unanswered = clients.filter((c) => c.busy).length;
  r.activeSec = Math.max(s.seconds, (tLast - t0) / 1000);
  await Promise.all(clients.map((c) => new Promise<void>((resolve) => {
    c.sock.once('close', () => resolve());
    c.sock.end();
    setTimeout(() => { c.sock.destroy(); resolve(); }, 2000).unref();
  })));
  latencies.sort((a, b) => a - b);
  r.p50Ms = latencies[Math.floor(latencies.length * 0.5)] ?? 0;
  r.p99Ms = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
  const c = process.cpuUsage(cpu0);
  r.cpuSec = (c.user + c.system) / 1e6;
  return r;
}

function generatorMain(): void {
  process.on('message', (m: StepRequest) => {
    if (m.type === 'step') void runStep(m).then((rep) => process.send!(rep));
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------
// The bench (capture side)
// ---------------------------------------------------------------------------

function startChild(role: 'server' | 'generator'): ChildProcess {
  return fork(new URL(import.meta.url).pathname, [], {
    env: { ...process.env, WS_LIVE_BENCH_ROLE: role },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMsg = (m: { type: string }) => {
      if (m.type !== type) return;
      cleanup();
      resolve(m as T);
    };
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`child exited (code ${code}) while waiting for "${type}"`)); };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no "${type}" from the child within ${timeoutMs} ms`)); }, timeoutMs);
    const cleanup = () => { clearTimeout(timer); child.off('message', onMsg); child.off('exit', onExit); };
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}

interface StepCounts {
  items: number;
  /** Request and response, status 200, no error. */
  clean: number;
  withErrors: number;
  /** Items with a response but no request / a request but no response. */
  noRequest: number;
  noResponse: number;
  firstError: string;
}

interface StepResult {
  offered: number;
  achieved: number;
  completed: number;
  captured: number;
  /** Items that came only after the step's connections closed (held behind a hole in the capture). */
  late: number;
  clean: number;
  missed: number;
  withErrors: number;
  firstError: string;
  kernelDrops: number | null;
  kernelPackets: number | null;
  packets: number;
  gaps: number;
  unattributed: number;
  captureCpu: number;
  serverCpu: number;
  generatorCpu: number;
  reachedRate: boolean;
  p50Ms: number;
  p99Ms: number;
  unanswered: number;
  /** Longest event-loop delay of the capture process during the step (an upper bound on a read stall). */
  maxStallMs: number;
}

const n0 = (v: number) => Math.round(v).toLocaleString('en-US');

export async function runLiveBench(opts: LiveBenchOptions = {}): Promise<{ highestZeroMissRate: number; steps: StepResult[] }> {
  const steps = opts.steps ?? [2000, 5000, 10_000, 15_000, 20_000, 30_000, 40_000, 50_000];
  const seconds = opts.seconds ?? 3;
  const bufferMb = opts.bufferMb ?? 256;
  if (steps.length === 0 || steps.some((r) => !Number.isFinite(r) || r <= 0)) throw new RangeError(`live bench: steps must be positive request rates (BENCH_LIVE_STEPS=2000,5000,...), got ${JSON.stringify(steps)}`);
  if (!(seconds > 0 && seconds <= 60)) throw new RangeError(`live bench: seconds per step must be in (0, 60] (BENCH_LIVE_SECONDS), got ${seconds}`);
  const device = opts.device ?? 'lo';
  console.log(`\ncapture (live): HTTP/1.1 keep-alive on loopback, server and load generator in child processes, capture in this one ` +
    `(device ${device}, ${bufferMb} MiB kernel buffer); ${seconds} s per step; machine load ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores`);
  // Measured: libpcap's immediate mode with cap's fixed 65535 snap length takes a 64 KiB ring slot per
  // packet, and lo shows every packet twice (out and in), so the ring bridges few packets.
  const slots = Math.floor((bufferMb * 1024 * 1024) / 65_536);
  console.log(`  the kernel ring holds ~${n0(slots)} packets${device === 'lo' ? ` (~${n0(slots / 2)} on lo, where each is seen twice)` : ''}: packets the capture has not read when it fills are dropped by the kernel`);

  const server = startChild('server');
  const generator = startChild('generator');
  const children = [server, generator];
  let live: LiveCapture | null = null;
  let tickTimer: NodeJS.Timeout | null = null;
  const results: StepResult[] = [];
  try {
    const { port } = await nextMessage<{ port: number }>(server, 'ready', 10_000);
    const perStep = new Map<number, StepCounts>();
    let unattributed = 0;
    const pipeline = new CapturePipeline({
      node: { name: 'bench', ip: '127.0.0.1' },
      worker: 'bench',
      onItem: (it) => {
        JSON.stringify(it.item); // as the service does before publishing
        const item = it.item as { request: { path?: string } | null; response: { status?: number; headers?: Record<string, string> } | null; error: string | null };
        // The step: from the request's path prefix, else from the id the server echoes in the response.
        const m = /^\/s(\d+)\//.exec(item.request?.path ?? '') ?? /^s(\d+)-/.exec(item.response?.headers?.['X-Request-Id'] ?? item.response?.headers?.['x-request-id'] ?? '');
        if (!m) { unattributed++; return; }
        const step = Number(m[1]);
        let c = perStep.get(step);
        if (!c) perStep.set(step, (c = { items: 0, clean: 0, withErrors: 0, noRequest: 0, noResponse: 0, firstError: '' }));
        c.items++;
        if (item.request === null) c.noRequest++;
        if (item.response === null) c.noResponse++;
        if (item.error) {
          c.withErrors++;
          if (!c.firstError) c.firstError = item.error;
        } else if (item.response?.status === 200) c.clean++;
      },
    });
    live = new LiveCapture({ device, filter: `tcp port ${port}`, bufferBytes: bufferMb * 1024 * 1024 });
    try {
      live.start((f) => pipeline.onFrame(f));
    } catch (err) {
      console.log(`  live capture unavailable, section skipped: ${(err as Error).message}`);
      return { highestZeroMissRate: 0, steps: [] };
    }
    tickTimer = setInterval(() => pipeline.tick(performance.timeOrigin + performance.now()), 1000);
    // Longest event-loop delay of the capture process (busy reading a burst, running GC, or descheduled):
    // an upper bound on how long the kernel ring had to hold packets on its own.
    const loop = monitorEventLoopDelay({ resolution: 2 });
    const cpuOf = async (child: ChildProcess) => {
      child.send({ type: 'cpu' });
      return (await nextMessage<CpuReport>(child, 'cpu', 5000)).cpuSec;
    };
    const head = `  ${'offered/s'.padStart(9)} ${'achieved/s'.padStart(10)} ${'completed'.padStart(9)} ${'captured'.padStart(9)} ${'missed'.padStart(6)} ` +
      `${'errors'.padStart(6)} ${'kern drops'.padStart(10)} ${'gaps'.padStart(5)} ${'packets'.padStart(8)} ${'cap CPU'.padStart(7)} ${'srv CPU'.padStart(7)} ${'gen CPU'.padStart(7)} ${'p50/p99 ms'.padStart(11)} ${'loop delay'.padStart(10)}`;
    console.log(head);
    for (let i = 0; i < steps.length; i++) {
      const step = i + 1;
      const rate = steps[i];
      const connections = opts.connections ?? Math.max(8, Math.min(128, Math.round(rate / 250)));
      const k0 = live.kernelStats();
      const s0 = pipeline.stats();
      const srv0 = await cpuOf(server);
      const cpu0 = process.cpuUsage();
      const w0 = performance.now();
      const pk0 = live.packets;
      loop.reset();
      loop.enable();
      generator.send({ type: 'step', port, step, rate, seconds, connections } satisfies StepRequest);
      const rep = await nextMessage<StepReport>(generator, 'done', (seconds + 15) * 1000);
      // Drain: until the capture has seen nothing new for 300 ms (at most 10 s).
      for (let last = -1, quietSince = performance.now(), t = performance.now(); performance.now() - t < 10_000;) {
        await new Promise((r) => setTimeout(r, 50));
        if (live.packets !== last) { last = live.packets; quietSince = performance.now(); } else if (performance.now() - quietSince >= 300) break;
      }
      const wall = (performance.now() - w0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      loop.disable();
      const maxStallMs = loop.max / 1e6;
      const srv1 = await cpuOf(server);
      const c = perStep.get(step) ?? { items: 0, clean: 0, withErrors: 0, noRequest: 0, noResponse: 0, firstError: '' };
      perStep.set(step, c);
      // Calls still missing may be held behind a capture hole until their connection closes
      // (both FINs + the reassembly's linger): wait for those (bounded), and count them as late.
      const onTime = c.items;
      if (c.clean < rep.completed) {
        const t = performance.now();
        while (c.clean < rep.completed && (pipeline.stats().reassembly_flowsActive ?? 0) > 0 && performance.now() - t < 8000) await new Promise((r) => setTimeout(r, 100));
      }
      const late = c.items - onTime;
      const k1 = live.kernelStats();
      const s1 = pipeline.stats();
      const achieved = rep.completed / rep.activeSec;
      const res: StepResult = {
        offered: rate, achieved, completed: rep.completed, captured: c.items, late, clean: c.clean, missed: rep.completed - c.clean,
        withErrors: c.withErrors, firstError: c.firstError,
        kernelDrops: k0 && k1 ? k1.drops - k0.drops : null, kernelPackets: k0 && k1 ? k1.packets - k0.packets : null,
        packets: live.packets - pk0, gaps: (s1.reassembly_tcpGaps ?? 0) - (s0.reassembly_tcpGaps ?? 0), unattributed,
        captureCpu: (cpu.user + cpu.system) / 1e6 / wall, serverCpu: (srv1 - srv0) / wall, generatorCpu: rep.cpuSec / wall,
        reachedRate: achieved >= rate * 0.95 && rep.unanswered === 0, p50Ms: rep.p50Ms, p99Ms: rep.p99Ms, unanswered: rep.unanswered, maxStallMs,
      };
      results.push(res);
      const pct = (v: number) => `${Math.round(v * 100)}%`;
      console.log(`  ${n0(rate).padStart(9)} ${n0(achieved).padStart(10)} ${n0(rep.completed).padStart(9)} ${n0(c.items).padStart(9)} ${n0(res.missed).padStart(6)} ` +
        `${n0(c.withErrors).padStart(6)} ${(res.kernelDrops === null ? '?' : n0(res.kernelDrops)).padStart(10)} ${n0(res.gaps).padStart(5)} ${n0(res.packets).padStart(8)} ` +
        `${pct(res.captureCpu).padStart(7)} ${pct(res.serverCpu).padStart(7)} ${pct(res.generatorCpu).padStart(7)} ${`${rep.p50Ms.toFixed(1)}/${rep.p99Ms.toFixed(1)}`.padStart(11)} ${`${Math.round(res.maxStallMs)} ms`.padStart(10)}`);
      if (late > 0) console.log(`      ${n0(late)} of these items came only after the connections closed (held behind a capture hole until then)`);
      if (c.withErrors > 0) console.log(`      items with errors: ${n0(c.withErrors)} (${n0(c.noRequest)} responses without their request, ${n0(c.noResponse)} requests without their response); first: ${c.firstError}`);
      if (rep.unanswered > 0 || rep.socketErrors > 0) console.log(`      generator: ${rep.unanswered} requests unanswered, ${rep.socketErrors} socket errors`);
      const missedSome = res.missed !== 0 || c.withErrors > 0 || (res.kernelDrops ?? 0) > 0;
      if (missedSome) {
        console.log(`      step ${step} missed calls: stopping here`);
        break;
      }
      if (!res.reachedRate) {
        console.log(`      the generator reached ${n0(achieved)}/s of the ${n0(rate)}/s offered (largest backlog ${n0(rep.maxBehind)} requests): stopping here (client/server bound on this machine)`);
        break;
      }
    }
    const ok = results.filter((r) => r.missed === 0 && r.withErrors === 0 && (r.kernelDrops ?? 0) === 0);
    const best = ok.reduce((a, r) => Math.max(a, r.achieved), 0);
    const last = results.at(-1);
    const limitedBy = last === undefined ? '' : last.missed !== 0 || last.withErrors > 0 || (last.kernelDrops ?? 0) > 0
      ? `the capture missed calls at ${n0(last.offered)}/s offered`
      : !last.reachedRate ? `the load generator/server could not go faster on this machine (the capture missed nothing)` : `the last step offered; the capture missed nothing`;
    console.log(`  highest sustained rate with zero missed calls: ${n0(best)} requests/s (limit: ${limitedBy})`);
    if (unattributed > 0) console.log(`  items that could not be attributed to a step: ${n0(unattributed)}`);
    const st = pipeline.stats();
    console.log(`  totals: ${n0(live.packets)} packets captured, kernel ${JSON.stringify(live.kernelStats())}, reassembly gaps ${n0(st.reassembly_tcpGaps ?? 0)}, ` +
      `items ${n0(st.items_produced)}, parser errors ${n0(st.reassembly_parserErrors ?? 0)}`);
    if (process.env.BENCH_LIVE_DEBUG) console.log(`  pipeline stats: ${JSON.stringify(st)}`);
    live.stop();
    live = null;
    pipeline.end();
    if (process.env.BENCH_LIVE_DEBUG) console.log(`  after end: ${JSON.stringify(pipeline.stats())}; per step ${JSON.stringify([...perStep])}`);
    return { highestZeroMissRate: best, steps: results };
  } finally {
    if (tickTimer) clearInterval(tickTimer);
    live?.stop();
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        await new Promise((r) => { c.once('exit', r); setTimeout(r, 2000).unref(); });
      }
    }
  }
}

const role = process.env.WS_LIVE_BENCH_ROLE;
if (role === 'server') serverMain();
else if (role === 'generator') generatorMain();
else if (import.meta.main) {
  const steps = process.env.BENCH_LIVE_STEPS ? process.env.BENCH_LIVE_STEPS.split(',').map(Number) : undefined;
  await runLiveBench({ steps, seconds: Number(process.env.BENCH_LIVE_SECONDS ?? 3) });
}
