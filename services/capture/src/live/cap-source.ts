/**
 * Live capture with `cap` (libpcap). cap keeps a raw pointer to the Buffer
 * given to open() and writes every packet into it: the Buffer is a field of
 * this object for the capture's whole life (if V8 collected it, libpcap would
 * write into freed memory). Packets arrive in immediate mode on the event
 * loop; cap reports neither timestamps nor wire lengths, so a packet's time is
 * its arrival time (µs resolution) and a truncated packet's length is
 * taken from its IP header when it can be, else captureLength + 1.
 */
import { createRequire } from 'node:module';
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
  /** Largest packet kept, bytes. */
  snaplen: number;
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
  private readonly frame: Frame;
  private readonly opts: LiveCaptureOptions;
  packets = 0;
  bytes = 0;

  constructor(opts: LiveCaptureOptions) {
    this.opts = opts;
    this.buffer = Buffer.alloc(Math.max(opts.snaplen, 1514));
    this.frame = { tsMs: 0, captureLength: 0, length: 0, linkType: 0, interfaceId: 0, data: this.buffer };
  }

  /** Opens the device and delivers frames to onFrame until stop(). Throws LiveCaptureError on a bad device or filter. */
  start(onFrame: (f: Frame) => void): void {
    const { Cap } = loadCap();
    const cap = new Cap();
    let linkName: string;
    try {
      linkName = cap.open(this.opts.device, this.opts.filter, this.opts.bufferBytes, this.buffer);
    } catch (err) {
      const known = (() => { try { return listDevices().join(', '); } catch { return '?'; } })();
      throw new LiveCaptureError(`cannot capture on "${this.opts.device}" with filter "${this.opts.filter}": ${(err as Error).message} (interfaces: ${known}; capturing needs root or CAP_NET_RAW)`, { cause: err });
    }
    const linkType = LINK_NAMES[linkName];
    if (linkType === undefined) {
      cap.close();
      throw new LiveCaptureError(`interface "${this.opts.device}" has link type ${linkName}, which wirescript does not decode`);
    }
    this.cap = cap;
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

  stop(): void {
    if (!this.cap) return;
    this.cap.removeAllListeners();
    this.cap.close();
    this.cap = null;
  }
}
