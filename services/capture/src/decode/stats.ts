/** Decoder counters: a live object the decoder updates in place (read it any time; copy to snapshot). */
export interface DecoderStats {
  /** Frames given to decode(). */
  frames: number;
  /** Captured bytes of those frames. */
  bytes: number;
  /** Transport payload bytes delivered with status OK. */
  payloadBytes: number;

  /** One counter per DECODE status. */
  ok: number;
  notIp: number;
  otherProtocol: number;
  fragmentHeld: number;
  truncated: number;
  malformed: number;
  unsupportedLink: number;

  /** IPv4/IPv6 fragments seen (atomic IPv6 fragments excluded: they need no reassembly). */
  fragments: number;
  /** Fragments accepted into reassembly state (including ones whose bytes were all held already). */
  fragmentsHeld: number;
  /** Fragments refused: truncated, oversized, misaligned, empty, or contradicting what is held (another end, data past the end). */
  fragmentsDropped: number;
  /** Accepted fragments that overlapped bytes already held (those bytes kept their first value). */
  fragmentOverlaps: number;
  /** Datagrams completed and delivered. */
  datagramsReassembled: number;
  /** Incomplete datagrams dropped when their timeout passed (capture time). */
  datagramsExpired: number;
  /** Incomplete datagrams dropped to make room (too many in flight, or too many bytes). */
  datagramsEvicted: number;
  /** Gauge: incomplete datagrams held now. */
  datagramsInFlight: number;
  /** Gauge: bytes of reassembly buffers held by those datagrams (what maxFragmentBytes bounds). */
  fragmentBytesInFlight: number;
}

export function newDecoderStats(): DecoderStats {
  return {
    frames: 0, bytes: 0, payloadBytes: 0,
    ok: 0, notIp: 0, otherProtocol: 0, fragmentHeld: 0, truncated: 0, malformed: 0, unsupportedLink: 0,
    fragments: 0, fragmentsHeld: 0, fragmentsDropped: 0, fragmentOverlaps: 0,
    datagramsReassembled: 0, datagramsExpired: 0, datagramsEvicted: 0, datagramsInFlight: 0, fragmentBytesInFlight: 0,
  };
}
