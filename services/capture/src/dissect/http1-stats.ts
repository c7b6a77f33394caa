/**
 * Process-wide counters of the HTTP/1 dissector (all parsers of the process
 * add to one object: a capture process is single-threaded, and the lead
 * exports these as metrics/status). Read with http1Stats() (a snapshot).
 */
export interface Http1Stats {
  /** Request / response heads parsed (interim 1xx included in responses). */
  requests: number;
  responses: number;
  /** Items emitted, and how many of them carry an `error`. */
  items: number;
  itemsWithError: number;
  /** 1xx responses other than 101 (100 Continue, 102, 103): parsed, not paired. */
  interimResponses: number;
  /** Responses without a request (mid-stream start, request lost). */
  orphanResponses: number;
  /** Requests emitted without a response (pair timeout or connection closed). */
  unansweredRequests: number;
  /** 101 to h2c handed to the http2 dissector; other 101 upgrades (websocket...); CONNECT tunnels. */
  upgradesH2c: number;
  upgradesOther: number;
  tunnels: number;
  /** Bytes not parsed after an upgrade/tunnel that no dissector took. */
  bytesIgnored: number;
  /** onGap calls and the bytes they reported. */
  gaps: number;
  gapBytes: number;
  /** Times a direction had to scan for the next start line, and bytes dropped while scanning. */
  resyncs: number;
  bytesSkipped: number;
  /** Bad start lines, bad Content-Length / chunk sizes, header blocks too large. */
  parseErrors: number;
  /** Header lines without a colon (skipped, the message is kept). */
  badHeaderLines: number;
  /** Bodies longer than maxBodyBytes (text cut, flagged truncated). */
  bodiesTruncated: number;
  /** Bodies whose Content-Encoding could not be decoded (kept as base64). */
  decodeErrors: number;
  /** Decoded output capped by maxOutputLength (decompression bombs, very large bodies). */
  decodeCapped: number;
  /** Exceptions caught at the parser boundary (a bug: should stay 0; see http1LastInternalError()). */
  internalErrors: number;
}

function zero(): Http1Stats {
  return {
    requests: 0, responses: 0, items: 0, itemsWithError: 0, interimResponses: 0, orphanResponses: 0,
    unansweredRequests: 0, upgradesH2c: 0, upgradesOther: 0, tunnels: 0, bytesIgnored: 0, gaps: 0, gapBytes: 0,
    resyncs: 0, bytesSkipped: 0, parseErrors: 0, badHeaderLines: 0, bodiesTruncated: 0, decodeErrors: 0, decodeCapped: 0,
    internalErrors: 0,
  };
}

/** The live counters (mutated in place by the parsers). */
export const stats: Http1Stats = zero();

/** A snapshot of the counters of every HTTP/1 parser of this process. */
export function http1Stats(): Http1Stats {
  return { ...stats };
}

let lastInternal = '';

/** Records an exception caught at the parser boundary. */
export function noteInternalError(e: unknown): void {
  stats.internalErrors++;
  lastInternal = String((e as Error | null)?.stack ?? e);
}

/** The stack of the last exception caught at the parser boundary ('' if none). */
export function http1LastInternalError(): string {
  return lastInternal;
}

/** Zeroes the counters (tests, or a status reporter that publishes deltas). */
export function resetHttp1Stats(): void {
  Object.assign(stats, zero());
  lastInternal = '';
}
