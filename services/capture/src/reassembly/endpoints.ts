/**
 * What is decided once per new flow: the text of its addresses, and which
 * side is the server when the handshake was not seen (capture started
 * mid-connection) or the transport has none (UDP).
 */
import { formatAddress } from '../decode/addr.ts';

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
  return formatAddress(buf, off, version);
}
