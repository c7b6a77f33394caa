/**
 * What is decided once per new flow: the text of its addresses, and which
 * side is the server when the handshake was not seen (capture started
 * mid-connection) or the transport has none (UDP).
 */

/**
 * Ports that name a service. Ports below 1024 are services anyway; these are
 * the common ones above it (databases, brokers, HTTP alternates, Kubernetes).
 * A 64 KiB table: one indexed load per question.
 */
const SERVICE_PORTS = new Uint8Array(65536);
for (let p = 0; p < 1024; p++) SERVICE_PORTS[p] = 1;
for (const p of [
  1433, 1521, 2049, 2181, 2379, 2380, 3000, 3306, 4222, 5000, 5432, 5672, 6379, 6443, 7000, 8000, 8080, 8081, 8443,
  8888, 9000, 9042, 9090, 9092, 9200, 9300, 10250, 11211, 15672, 27017, 50051,
]) SERVICE_PORTS[p] = 1;

/** A port below 1024 or one of the common service ports (8080, 6379, 9090, 50051, ...). */
export function isServicePort(port: number): boolean {
  return SERVICE_PORTS[port & 0xffff] === 1;
}

/**
 * TCP seen mid-stream: is the source of the first packet the server? The side
 * with the service port is; when both or neither have one, the lower port
 * (ephemeral client ports are high).
 */
export function tcpSourceIsServer(srcPort: number, dstPort: number): boolean {
  const s = isServicePort(srcPort);
  if (s !== isServicePort(dstPort)) return s;
  return srcPort < dstPort;
}

/**
 * UDP: the first sender is the client (queries come first) unless it sent
 * from a service port to a non-service one (a response whose query was not
 * captured, e.g. from port 53).
 */
export function udpSourceIsServer(srcPort: number, dstPort: number): boolean {
  return isServicePort(srcPort) && !isServicePort(dstPort);
}

/** Address text: dotted IPv4, RFC 5952 IPv6 (lower case, longest zero run as '::', IPv4-mapped as ::ffff:a.b.c.d). */
export function ipToString(buf: Uint8Array, off: number, version: 4 | 6): string {
  if (version === 4) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((buf[off + 2 * i] << 8) | buf[off + 2 * i + 1]);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${buf[off + 12]}.${buf[off + 13]}.${buf[off + 14]}.${buf[off + 15]}`;
  }
  // Longest run of zero groups (the first on a tie), compressed only when 2+ long (RFC 5952 4.2.2).
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = (from: number, to: number): string => g.slice(from, to).map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}
