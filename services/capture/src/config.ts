/** capture configuration: environment variables, one schema, documented defaults with units. */
import { commonConfig, defineConfig, loadConfig, vars, type Config } from '@wirescript/config';

export const captureConfig = defineConfig({
  ...commonConfig,
  captureInterface: vars.string('CAPTURE_INTERFACE', { default: 'any', doc: 'Interface to capture live ("any" = all, Linux cooked capture); ignored when CAPTURE_PCAP is set' }),
  captureFilter: vars.string('CAPTURE_FILTER', { default: '', doc: 'BPF filter for live capture (tcpdump syntax); empty = everything' }),
  excludeNats: vars.bool('CAPTURE_EXCLUDE_NATS', { default: true, doc: "Leave the NATS server's port out of live capture, so capture does not capture (and publish summaries of) its own publishing" }),
  capturePcap: vars.string('CAPTURE_PCAP', { optional: true, doc: 'A pcap or pcapng file to replay instead of capturing live' }),
  replaySpeed: vars.string('REPLAY_SPEED', {
    default: 'max',
    doc: 'Replay pace of CAPTURE_PCAP: "max" (as fast as possible), "recorded" (original timing) or a speed multiplier such as 2',
  }),
  exitAfterReplay: vars.bool('EXIT_AFTER_REPLAY', { default: true, doc: 'With CAPTURE_PCAP: exit 0 once the file is replayed and everything is published' }),
  captureBufferMb: vars.int('CAPTURE_BUFFER_MB', { default: 256, min: 1, max: 4096, doc: 'Kernel capture buffer, MiB; it holds 16 packets per MiB in flight (64 KiB slots), beyond that the kernel drops (counted as kernel_drops)' }),
  maxBodyBytes: vars.int('MAX_BODY_BYTES', { default: 65_536, min: 0, max: 64 * 1024 * 1024, doc: 'Largest decoded body kept in an item (content.text / postData.text), bytes' }),
  decodeBodies: vars.bool('DECODE_BODIES', { default: true, doc: 'Decode gzip, deflate and br bodies' }),
  pairTimeoutMs: vars.duration('PAIR_TIMEOUT', { default: 30_000, min: 10, doc: 'A request without response (or response without request) becomes an item with an error after this much capture time' }),
  maxFlows: vars.int('MAX_FLOWS', { default: 65_536, min: 16, max: 10_000_000, doc: 'TCP connections and UDP flows tracked at once; beyond it the least recently used is evicted (counted)' }),
  streamBufferBytes: vars.int('STREAM_BUFFER_BYTES', { default: 1_048_576, min: 4096, max: 1024 * 1024 * 1024, doc: 'Out-of-order bytes held per direction of a TCP connection before declaring a gap' }),
  tcpIdleTimeoutMs: vars.duration('TCP_IDLE_TIMEOUT', { default: 120_000, min: 100, doc: 'A TCP connection idle this long (capture time) is closed' }),
  udpIdleTimeoutMs: vars.duration('UDP_IDLE_TIMEOUT', { default: 30_000, min: 100, doc: 'A UDP flow idle this long (capture time) is forgotten' }),
  publishQueueCapacity: vars.int('PUBLISH_QUEUE_CAPACITY', { default: 65_536, min: 1, max: 10_000_000, doc: 'Items waiting to be published; beyond it items are dropped and counted (capture never waits on NATS)' }),
  packetSummaries: vars.bool('PACKET_SUMMARIES', { default: true, doc: 'Publish packet summaries (onPacketCaptured) on ws.packets.<node>' }),
  packetBatchSize: vars.int('PACKET_BATCH_SIZE', { default: 1_000, min: 1, max: 100_000, doc: 'Packet summaries per PacketBatch message' }),
  packetBatchIntervalMs: vars.duration('PACKET_BATCH_INTERVAL', { default: 200, min: 10, doc: 'Longest a packet summary waits before its batch is sent' }),
  pcapRingDir: vars.string('PCAP_RING_DIR', { optional: true, doc: 'Keep the packets of every TCP connection and UDP flow in its own pcap file under this folder (a bounded ring, so a pcap of the streams of chosen items can be cut later; items name their stream in `stream`); unset = off. Counted in pcap_ring_files, pcap_ring_bytes, pcap_ring_evicted_streams' }),
  pcapRingMaxMb: vars.int('PCAP_RING_MAX_MB', { default: 256, min: 1, doc: 'Size bound of the per-stream pcap ring, MiB (oldest streams evicted, counted)' }),
  pcapRingMaxFiles: vars.int('PCAP_RING_MAX_FILES', { default: 10_000, min: 1, doc: 'Most per-stream pcap files kept' }),
  statusIntervalMs: vars.duration('STATUS_INTERVAL', { default: 5_000, min: 100, doc: 'Period of the replica status on ws.status.capture.<replica>' }),
  healthPort: vars.int('HEALTH_PORT', { default: 8082, min: 0, max: 65535, doc: 'Port of the HTTP health endpoints /livez and /readyz; 0 = off' }),
  healthHost: vars.string('HEALTH_HOST', { default: '0.0.0.0', doc: 'Address the health endpoints bind to' }),
  drainTimeoutMs: vars.duration('DRAIN_TIMEOUT', { default: 10_000, min: 100, doc: 'On SIGTERM, how long to publish what is queued before closing' }),
});
export type CaptureConfig = Config<typeof captureConfig>;

export class CaptureConfigError extends Error {
  override name = 'CaptureConfigError';
}

/** Loads and cross-checks the capture config (what one variable's schema cannot say alone). */
export function loadCaptureConfig(env: Record<string, string | undefined>): CaptureConfig {
  const c = loadConfig(captureConfig, env);
  const v = c.replaySpeed;
  if (v !== 'max' && v !== 'recorded' && !(Number(v) > 0)) {
    throw new CaptureConfigError(`invalid configuration: REPLAY_SPEED: must be "max", "recorded" or a number > 0, got "${v}"`);
  }
  return c;
}

export function replaySpeed(v: string): 'max' | 'recorded' | number {
  return v === 'max' || v === 'recorded' ? v : Number(v);
}

/**
 * The BPF filter live capture uses: CAPTURE_FILTER, minus the NATS server's
 * port when CAPTURE_EXCLUDE_NATS (otherwise every batch capture publishes
 * shows up again as packets to summarise: a feedback loop on "any").
 */
export function effectiveFilter(c: Pick<CaptureConfig, 'captureFilter' | 'excludeNats' | 'natsUrl'>): string {
  const user = c.captureFilter.trim();
  if (!c.excludeNats) return user;
  let port = 4222;
  try {
    const u = new URL(c.natsUrl);
    if (u.port) port = Number(u.port);
  } catch {
    // NATS_URL was validated by the schema; keep the default port.
  }
  const own = `not (tcp port ${port})`;
  return user === '' ? own : `(${user}) and ${own}`;
}
