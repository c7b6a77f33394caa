/**
 * Live capture with `cap` (libpcap). cap keeps a raw pointer to the Buffer
 * given to open() and writes every packet into it: the Buffer is a field of
 * this object for the capture's whole life (if V8 collected it, libpcap would
 * write into freed memory). Packets arrive in immediate mode on the event
 * loop; cap reports neither timestamps nor wire lengths, so a packet's time is
 * its arrival time (µs resolution) and a truncated packet's length is
 * captureLength + 1. cap fixes the snap length at 65535, and libpcap's
 * immediate mode gives every packet a 64 KiB slot of the kernel buffer: the
 * buffer holds bufferBytes / 64 KiB packets in flight (CAPTURE_BUFFER_MB x 16).
 */
import { createRequire } from 'node:module';
import { SocketDropCounter, packetSocketFds } from '@wirescript/pcap-stats';
import { LINKTYPE, type Frame } from '../types.ts';

const require = createRequire(import.meta.url);

interface CapInstance {
  open(device: string, filter: string, bufferSize: number, buffer: Buffer): string;
  close(): void;
  on(event: 'packet', fn: (nbytes: number, truncated: boolean) => void): void;
  removeAllListeners(): void;
}
interface CapModule {
  Cap: { new (): CapInstance; findDevice(ip?: string): string | undefined; deviceList(): { name: string; addresses: { addr: string }[] }[] };
}

/**
 * Closed cap instances (and their buffers) are kept for the life of the
 * process: garbage-collecting a closed Cap object crashes the process (cap's
 * native destructor frees its pcap state a second time; seen here as a
 * segfault when a second capture started after the first was collected).
 * One small object per capture run.
 */
const retired: unknown[] = [];

export class LiveCaptureError extends Error {
  override name = 'LiveCaptureError';
}

/** cap's link type names -> LINKTYPE numbers. */
const LINK_NAMES: Record<string, number> = {
  ETHERNET: LINKTYPE.ETHERNET,
  NULL: LINKTYPE.NULL,
  LOOP: LINKTYPE.LOOP,
  RAW: LINKTYPE.RAW,
  IPV4: LINKTYPE.IPV4,
  IPV6: LINKTYPE.IPV6,
  LINUX_SLL: LINKTYPE.LINUX_SLL,
  LINUX_SLL2: LINKTYPE.LINUX_SLL2,
};

export interface LiveCaptureOptions {
  /** Interface name, or "any" (Linux cooked capture). */
  device: string;
  /** BPF filter ('' = everything). */
  filter: string;
  /** Kernel capture buffer, bytes (packets beyond it are dropped by the kernel). */
  bufferBytes: number;
}

function loadCap(): CapModule {
  try {
    return require('cap') as CapModule;
  } catch (err) {
    throw new LiveCaptureError(`live capture needs the "cap" module built against libpcap (apt-get install libpcap-dev; npm ci): ${(err as Error).message}`, { cause: err });
  }
}

export function listDevices(): string[] {
  return loadCap().Cap.deviceList().map((d) => d.name);
}

export class LiveCapture {
  /** Held for the capture's whole life: libpcap writes into it. */
  private readonly buffer: Buffer;
  private cap: CapInstance | null = null;
  /** The kernel counters of cap's socket (found as the AF_PACKET descriptor that open() added). */
  private kernel: SocketDropCounter | null = null;
  private readonly frame: Frame;
  private readonly opts: LiveCaptureOptions;
  packets = 0;
  bytes = 0;

  constructor(opts: LiveCaptureOptions) {
    this.opts = opts;
    // cap captures up to 65535 bytes per packet into this buffer.
    this.buffer = Buffer.alloc(65_536);
    this.frame = { tsMs: 0, captureLength: 0, length: 0, linkType: 0, interfaceId: 0, data: this.buffer };
  }

  /** Opens the device and delivers frames to onFrame until stop(). Throws LiveCaptureError on a bad device or filter. */
  start(onFrame: (f: Frame) => void): void {
    const { Cap } = loadCap();
    const cap = new Cap();
    let linkName: string;
    const before = new Set(packetSocketFds());
    try {
      linkName = cap.open(this.opts.device, this.opts.filter, this.opts.bufferBytes, this.buffer);
    } catch (err) {
      retired.push(cap, this.buffer);
      const known = (() => { try { return listDevices().join(', '); } catch { return '?'; } })();
      throw new LiveCaptureError(`cannot capture on "${this.opts.device}" with filter "${this.opts.filter}": ${(err as Error).message} (interfaces: ${known}; capturing needs root or CAP_NET_RAW)`, { cause: err });
    }
    // cap names some link types with libpcap's LINKTYPE_ prefix (e.g. "any" -> LINKTYPE_LINUX_SLL).
    const linkType = LINK_NAMES[linkName.replace(/^(LINKTYPE|DLT)_/, '')];
    if (linkType === undefined) {
      cap.close();
      retired.push(cap, this.buffer);
      throw new LiveCaptureError(`interface "${this.opts.device}" has link type ${linkName}, which wirescript does not decode`);
    }
    this.cap = cap;
    const added = packetSocketFds().filter((fd) => !before.has(fd));
    // Exactly one new packet socket is ours; anything else means we cannot tell, and say so via null.
    this.kernel = added.length === 1 ? new SocketDropCounter(added[0]) : null;
    const frame = this.frame;
    frame.linkType = linkType;
    const origin = performance.timeOrigin;
    cap.on('packet', (nbytes: number, truncated: boolean) => {
      frame.tsMs = origin + performance.now();
      frame.captureLength = nbytes;
      frame.length = truncated ? nbytes + 1 : nbytes;
      frame.data = this.buffer.subarray(0, nbytes);
      this.packets++;
      this.bytes += nbytes;
      onFrame(frame);
    });
  }

  /**
   * Packets the kernel dropped (capture buffer full) since start, and packets it
   * passed to the socket; null when the socket could not be identified.
   */
  kernelStats(): { packets: number; drops: number } | null {
    if (!this.kernel || !this.cap) return this.kernel ? { packets: this.kernel.packets, drops: this.kernel.drops } : null;
    return this.kernel.read();
  }

  stop(): void {
    if (!this.cap) return;
    this.kernelStats();
    this.cap.removeAllListeners();
    this.cap.close();
    retired.push(this.cap, this.buffer);
    this.cap = null;
  }
}
