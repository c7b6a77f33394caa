/**
 * What goes into the pod map: which IPs a pod owns, how an IP becomes a KV
 * key and back, and the value stored under it.
 */
import net from 'node:net';

/** The JetStream KV bucket of the IP -> pod map (the hub writes it, capture reads it). */
export const POD_MAP_BUCKET = 'ws_pods';

/** The value stored under an IP's key, as JSON. */
export interface PodMapEntry {
  name: string;
  namespace: string;
  /** `spec.nodeName` ('' while unscheduled). */
  node: string;
  uid: string;
}

/** The slice of a Kubernetes Pod the map reads. Everything is optional: the API may omit any field. */
export interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    /** RFC 3339 text from the wire (a Date when a typed client deserialised it). */
    creationTimestamp?: string | Date;
    resourceVersion?: string;
  };
  spec?: { nodeName?: string; hostNetwork?: boolean };
  status?: { phase?: string; podIP?: string; podIPs?: readonly { ip?: string }[] };
}

/**
 * The canonical text of an IP address (what capture prints): IPv4 dotted
 * quad; IPv6 in RFC 5952 form (lower case, longest zero run compressed), an
 * IPv4-mapped IPv6 address as its IPv4 form. undefined when it is not an IP.
 */
export function canonicalIp(ip: string): string | undefined {
  if (typeof ip !== 'string' || ip === '') return undefined;
  if (net.isIPv4(ip)) return ip;
  if (!net.isIPv6(ip) || ip.includes('%')) return undefined;
  // The WHATWG URL parser serialises IPv6 hosts per RFC 5952.
  const host = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped) {
    const hi = parseInt(mapped[1], 16);
    const lo = parseInt(mapped[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return host;
}

/**
 * KV key of an IP: `.` becomes `_` and `:` becomes `-` (KV keys are subject
 * tokens: no `:`, and dots would split them). Injective, since neither `_` nor
 * `-` occurs in an IP: `10.1.2.3` -> `10_1_2_3`, `fd00::1` -> `fd00--1`.
 */
export function podMapKey(ip: string): string {
  return ip.replace(/\./g, '_').replace(/:/g, '-');
}

/** The IP of a KV key written by podMapKey; undefined for a key that is not one. */
export function ipFromPodMapKey(key: string): string | undefined {
  const ip = key.replace(/_/g, '.').replace(/-/g, ':');
  return canonicalIp(ip) === ip ? ip : undefined;
}

/** `<namespace>/<name>`: how the map and the hub identify a pod (a recreated pod keeps it; its uid changes). */
export function podKey(pod: PodLike): string | undefined {
  const m = pod.metadata;
  if (!m || typeof m.name !== 'string' || m.name === '') return undefined;
  return `${m.namespace ?? ''}/${m.name}`;
}

/**
 * The IPs a pod owns in the map: `status.podIPs` and `status.podIP`,
 * canonical, without duplicates. None for host-network pods (they share the
 * node's address with every other host-network pod, so it names none of them)
 * and for pods that finished (Succeeded/Failed: their address is released and
 * may already belong to a new pod).
 */
export function podIps(pod: PodLike): string[] {
  if (pod.spec?.hostNetwork === true) return [];
  const st = pod.status;
  if (!st || st.phase === 'Succeeded' || st.phase === 'Failed') return [];
  const out: string[] = [];
  const add = (raw: string | undefined) => {
    if (raw === undefined) return;
    const ip = canonicalIp(raw);
    if (ip !== undefined && !out.includes(ip)) out.push(ip);
  };
  if (Array.isArray(st.podIPs)) for (const p of st.podIPs) add(p?.ip);
  add(st.podIP);
  return out;
}

/** The map value of a pod. */
export function podMapEntry(pod: PodLike): PodMapEntry {
  const m = pod.metadata ?? {};
  return { name: m.name ?? '', namespace: m.namespace ?? '', node: pod.spec?.nodeName ?? '', uid: m.uid ?? '' };
}

/** Creation time in ms (0 when unknown): when two pods claim one IP, the newer wins. */
export function podCreatedMs(pod: PodLike): number {
  const c = pod.metadata?.creationTimestamp;
  if (c === undefined) return 0;
  const ms = c instanceof Date ? c.getTime() : Date.parse(c);
  return Number.isFinite(ms) ? ms : 0;
}
