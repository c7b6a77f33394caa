/**
 * A bounded table of flows (TCP connections, UDP flows) keyed by ipVersion,
 * protocol, addresses and ports, the same flow for both directions.
 *
 * Hot path: a lookup hashes the address/port bytes straight from the
 * DecodedPacket buffer and compares them in place against the stored key, so
 * a packet of a known flow allocates nothing. Keys live in typed arrays
 * (struct of arrays), one slot per flow, chained per hash bucket.
 *
 * Each flow belongs to a lane (TCP, UDP) with its own idle timeout and its own
 * LRU list (most recent at the head): idle expiry walks a lane from its tail
 * and stops at the first live flow, so it costs only what it expires. When the
 * table is full a new flow evicts the least recently used flow of all lanes
 * (counted). The owner hears of every removal it did not ask for through
 * onRemove.
 */
import type { DecodedPacket, Direction } from '../types.ts';

/** Why onRemove was called. */
export const REMOVAL = {
  /** Idle for longer than its lane's timeout. */
  IDLE: 0,
  /** Pushed out by a new flow while the table was full. */
  EVICTED: 1,
  /** clear(): end of capture. */
  CLEARED: 2,
} as const;
export type Removal = (typeof REMOVAL)[keyof typeof REMOVAL];

export interface FlowTableOptions<V> {
  /** Most flows held at once (all lanes together). */
  maxFlows: number;
  /** Idle timeout of each lane, ms of capture time; the array's length is the number of lanes. */
  idleTimeoutMs: readonly number[];
  /** A flow left the table by expiry, eviction or clear (never by remove()). The flow is already gone from the table. */
  onRemove(value: V, lane: number, reason: Removal, nowMs: number): void;
}

/** Murmur3's 32-bit finaliser: every input bit reaches every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

function endpointHash(buf: Uint8Array, off: number, addrLen: number, port: number): number {
  let h = 0x2f6b1d3c ^ port;
  for (let i = 0; i < addrLen; i += 4) {
    const w = (buf[off + i] << 24) | (buf[off + i + 1] << 16) | (buf[off + i + 2] << 8) | buf[off + i + 3];
    h = Math.imul(h ^ w, 0xcc9e2d51);
    h = (h << 15) | (h >>> 17);
  }
  return fmix32(h);
}

/**
 * Symmetric 32-bit hash of a flow: the two endpoints are hashed separately
 * and added (addition commutes, so A->B and B->A hash alike; the port is mixed
 * with its own address so swapping only the ports changes the hash).
 */
export function flowHash(
  buf: Uint8Array, srcOff: number, dstOff: number, addrLen: number, srcPort: number, dstPort: number, protocol: number,
): number {
  const h = (endpointHash(buf, srcOff, addrLen, srcPort) + endpointHash(buf, dstOff, addrLen, dstPort)) | 0;
  return fmix32(h ^ Math.imul(protocol | (addrLen << 8), 0x9e3779b1)) | 0;
}

const KEY_STRIDE = 32; // side A's address at +0, side B's at +16 (IPv4 uses the first 4 bytes of each)
const INITIAL_SLOTS = 1024;

function addrEqual(a: Uint8Array, ao: number, b: Uint8Array, bo: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

export class FlowTable<V> {
  readonly maxFlows: number;
  /** Flows in the table now. */
  size = 0;
  /** Flows pushed out because the table was full. */
  flowsEvicted = 0;
  /** Flows removed for being idle. */
  flowsExpired = 0;
  /**
   * Set by find(): 0 when the packet was sent by the flow's side A (the sender
   * of the packet that created the flow), 1 when by side B.
   */
  foundDir: Direction = 0;

  private readonly idle: Float64Array;
  private readonly onRemove: FlowTableOptions<V>['onRemove'];
  private readonly heads: Int32Array;
  private readonly tails: Int32Array;
  private cap = 0;
  private used = 0; // slots [0, used) have been handed out at least once
  private freeHead = -1;
  private mask = 0;
  private buckets = new Int32Array(0);
  private keys = new Uint8Array(0);
  private portA = new Uint16Array(0);
  private portB = new Uint16Array(0);
  private meta = new Uint16Array(0); // ipVersion << 8 | protocol
  private laneOf = new Uint8Array(0);
  private hashes = new Int32Array(0);
  private chain = new Int32Array(0); // next slot in the bucket, or in the free list
  private prev = new Int32Array(0); // LRU links within a lane
  private next = new Int32Array(0);
  private seen = new Float64Array(0);
  private values: (V | undefined)[] = [];

  constructor(opts: FlowTableOptions<V>) {
    if (!(opts.maxFlows >= 1)) throw new RangeError(`maxFlows must be at least 1, got ${opts.maxFlows}`);
    if (opts.idleTimeoutMs.length < 1 || opts.idleTimeoutMs.length > 255) throw new RangeError('between 1 and 255 lanes');
    this.maxFlows = Math.floor(opts.maxFlows);
    this.idle = Float64Array.from(opts.idleTimeoutMs);
    this.onRemove = opts.onRemove;
    this.heads = new Int32Array(this.idle.length).fill(-1);
    this.tails = new Int32Array(this.idle.length).fill(-1);
    this.grow(Math.min(this.maxFlows, INITIAL_SLOTS));
  }

  /** The slot of the packet's flow, or -1. Sets foundDir. Allocates nothing. */
  find(p: DecodedPacket): number {
    const alen = p.ipVersion === 6 ? 16 : 4;
    const buf = p.buf;
    const so = p.srcAddrOffset;
    const dof = p.dstAddrOffset;
    const sp = p.srcPort;
    const dp = p.dstPort;
    const h = flowHash(buf, so, dof, alen, sp, dp, p.protocol);
    const meta = (p.ipVersion << 8) | p.protocol;
    const keys = this.keys;
    for (let i = this.buckets[h & this.mask]; i >= 0; i = this.chain[i]) {
      if (this.hashes[i] !== h || this.meta[i] !== meta) continue;
      const k = i * KEY_STRIDE;
      if (this.portA[i] === sp && this.portB[i] === dp && addrEqual(buf, so, keys, k, alen) && addrEqual(buf, dof, keys, k + 16, alen)) {
        this.foundDir = 0;
        return i;
      }
      if (this.portA[i] === dp && this.portB[i] === sp && addrEqual(buf, dof, keys, k, alen) && addrEqual(buf, so, keys, k + 16, alen)) {
        this.foundDir = 1;
        return i;
      }
    }
    return -1;
  }

  /**
   * Adds the packet's flow (the caller found none) with the packet's source as
   * side A; evicts the least recently used flow first when full. Returns the slot.
   */
  insert(p: DecodedPacket, lane: number, value: V): number {
    if (this.size >= this.maxFlows) this.evictOldest(p.tsMs);
    let s = this.freeHead;
    if (s >= 0) this.freeHead = this.chain[s];
    else {
      if (this.used === this.cap) this.grow(Math.min(this.maxFlows, this.cap * 2));
      s = this.used++;
    }
    const alen = p.ipVersion === 6 ? 16 : 4;
    const h = flowHash(p.buf, p.srcAddrOffset, p.dstAddrOffset, alen, p.srcPort, p.dstPort, p.protocol);
    const k = s * KEY_STRIDE;
    this.keys.fill(0, k, k + KEY_STRIDE);
    this.keys.set(p.buf.subarray(p.srcAddrOffset, p.srcAddrOffset + alen), k);
    this.keys.set(p.buf.subarray(p.dstAddrOffset, p.dstAddrOffset + alen), k + 16);
    this.portA[s] = p.srcPort;
    this.portB[s] = p.dstPort;
    this.meta[s] = (p.ipVersion << 8) | p.protocol;
    this.hashes[s] = h;
    this.laneOf[s] = lane;
    this.seen[s] = p.tsMs;
    this.values[s] = value;
    const b = h & this.mask;
    this.chain[s] = this.buckets[b];
    this.buckets[b] = s;
    this.linkHead(s, lane);
    this.size++;
    return s;
  }

  get(slot: number): V {
    return this.values[slot] as V;
  }

  /** Marks the flow as just used: head of its lane's LRU, last-seen time moved forward (never back). */
  touch(slot: number, tsMs: number): void {
    if (tsMs > this.seen[slot]) this.seen[slot] = tsMs;
    const lane = this.laneOf[slot];
    if (this.heads[lane] === slot) return;
    this.unlinkLru(slot, lane);
    this.linkHead(slot, lane);
  }

  /** Capture time of the flow's latest packet. */
  lastSeen(slot: number): number {
    return this.seen[slot];
  }

  /** Removes a flow at its owner's request (no onRemove). */
  remove(slot: number): void {
    if (slot < 0 || slot >= this.used || this.values[slot] === undefined) return;
    this.release(slot);
  }

  /** Removes every flow idle for at least its lane's timeout (onRemove IDLE for each). Returns how many. */
  expire(nowMs: number): number {
    let n = 0;
    for (let lane = 0; lane < this.idle.length; lane++) {
      const limit = nowMs - this.idle[lane];
      for (let s = this.tails[lane]; s >= 0 && this.seen[s] <= limit; s = this.tails[lane]) {
        const v = this.values[s] as V;
        this.release(s);
        this.flowsExpired++;
        n++;
        this.onRemove(v, lane, REMOVAL.IDLE, nowMs);
      }
    }
    return n;
  }

  /** Removes every flow (onRemove CLEARED for each), least recently used first. */
  clear(nowMs: number): void {
    for (let lane = 0; lane < this.idle.length; lane++) {
      for (let s = this.tails[lane]; s >= 0; s = this.tails[lane]) {
        const v = this.values[s] as V;
        this.release(s);
        this.onRemove(v, lane, REMOVAL.CLEARED, nowMs);
      }
    }
  }

  /** Calls fn for each flow of a lane, most recent first. fn may remove the flow it is given (and only that one). */
  forEach(lane: number, fn: (value: V, slot: number) => void): void {
    for (let s = this.heads[lane]; s >= 0; ) {
      const after = this.next[s];
      fn(this.values[s] as V, s);
      s = after;
    }
  }

  /** Flows in one lane. */
  laneSize(lane: number): number {
    let n = 0;
    for (let s = this.heads[lane]; s >= 0 && n <= this.size; s = this.next[s]) n++;
    return n;
  }

  private evictOldest(nowMs: number): void {
    let victim = -1;
    let lane = -1;
    for (let l = 0; l < this.idle.length; l++) {
      const t = this.tails[l];
      if (t >= 0 && (victim < 0 || this.seen[t] < this.seen[victim])) { victim = t; lane = l; }
    }
    if (victim < 0) return;
    const v = this.values[victim] as V;
    this.release(victim);
    this.flowsEvicted++;
    this.onRemove(v, lane, REMOVAL.EVICTED, nowMs);
  }

  private release(s: number): void {
    const b = this.hashes[s] & this.mask;
    if (this.buckets[b] === s) this.buckets[b] = this.chain[s];
    else {
      let i = this.buckets[b];
      while (i >= 0 && this.chain[i] !== s) i = this.chain[i];
      if (i >= 0) this.chain[i] = this.chain[s];
    }
    this.unlinkLru(s, this.laneOf[s]);
    this.values[s] = undefined;
    this.chain[s] = this.freeHead;
    this.freeHead = s;
    this.size--;
  }

  private linkHead(s: number, lane: number): void {
    const h = this.heads[lane];
    this.prev[s] = -1;
    this.next[s] = h;
    if (h >= 0) this.prev[h] = s;
    else this.tails[lane] = s;
    this.heads[lane] = s;
  }

  private unlinkLru(s: number, lane: number): void {
    const p = this.prev[s];
    const n = this.next[s];
    if (p >= 0) this.next[p] = n;
    else this.heads[lane] = n;
    if (n >= 0) this.prev[n] = p;
    else this.tails[lane] = p;
  }

  /** Grows the slot arrays (doubling up to maxFlows) and rebuilds the buckets at a load of at most 1/2. */
  private grow(cap: number): void {
    const old = this.cap;
    const widen = <T extends Uint8Array | Uint16Array | Int32Array | Float64Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(cap * per);
      b.set(a.subarray(0, old * per));
      return b;
    };
    this.keys = widen(this.keys, (n) => new Uint8Array(n), KEY_STRIDE);
    this.portA = widen(this.portA, (n) => new Uint16Array(n));
    this.portB = widen(this.portB, (n) => new Uint16Array(n));
    this.meta = widen(this.meta, (n) => new Uint16Array(n));
    this.laneOf = widen(this.laneOf, (n) => new Uint8Array(n));
    this.hashes = widen(this.hashes, (n) => new Int32Array(n));
    this.chain = widen(this.chain, (n) => new Int32Array(n));
    this.prev = widen(this.prev, (n) => new Int32Array(n));
    this.next = widen(this.next, (n) => new Int32Array(n));
    this.seen = widen(this.seen, (n) => new Float64Array(n));
    for (let i = old; i < cap; i++) this.values.push(undefined);
    this.cap = cap;
    let nb = 2;
    while (nb < cap * 2) nb *= 2;
    this.mask = nb - 1;
    this.buckets = new Int32Array(nb).fill(-1);
    // Free slots are all below `used` and chained through `chain`: rebuild the bucket chains of live slots only.
    for (let s = 0; s < this.used; s++) {
      if (this.values[s] === undefined) continue;
      const b = this.hashes[s] & this.mask;
      this.chain[s] = this.buckets[b];
      this.buckets[b] = s;
    }
  }
}
