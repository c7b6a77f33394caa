/**
 * Kernel counters of this process's AF_PACKET capture sockets. libpcap's
 * pcap_stats reads these on Linux; the cap binding does not expose them, so
 * the capture finds its socket by descriptor (the AF_PACKET fd that appeared
 * when it opened) and reads PACKET_STATISTICS here. The kernel resets the
 * counters on every read: SocketDropCounter accumulates them.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

interface Addon {
  isPacketSocket(fd: number): boolean;
  readStats(fd: number): { packets: number; drops: number };
}

const require = createRequire(import.meta.url);

export class PcapStatsError extends Error {
  override name = 'PcapStatsError';
}

let addon: Addon | null = null;
function load(): Addon {
  if (addon) return addon;
  try {
    addon = require('../build/Release/pcap_stats.node') as Addon;
  } catch (err) {
    throw new PcapStatsError(`the pcap-stats addon is not built (npm ci builds it with node-gyp; it needs g++ and make): ${(err as Error).message}`, { cause: err });
  }
  return addon;
}

/** Descriptors of this process's AF_PACKET sockets (Linux). */
export function packetSocketFds(): number[] {
  const a = load();
  const out: number[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (Number.isInteger(fd) && a.isPacketSocket(fd)) out.push(fd);
  }
  return out;
}

/** Accumulated kernel counters of one capture socket. */
export class SocketDropCounter {
  readonly fd: number;
  packets = 0;
  drops = 0;

  constructor(fd: number) {
    this.fd = fd;
  }

  /** Reads the kernel's counters since the last read and adds them up; returns the totals. */
  read(): { packets: number; drops: number } {
    const s = load().readStats(this.fd);
    this.packets += s.packets;
    this.drops += s.drops;
    return { packets: this.packets, drops: this.drops };
  }
}
