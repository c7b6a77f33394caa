/**
 * Process-wide counters of the HTTP/2 dissector (every parser of the process
 * adds to one object; a capture process is single-threaded), for status and
 * metrics: what was dropped, lost or cut is counted here. Read with
 * http2Stats() (a snapshot).
 */
export interface Http2Stats {
  /** Items emitted, how many carry an `error`, and how many are gRPC calls. */
  items: number;
  itemsWithError: number;
  grpcItems: number;
  /** Streams flushed early: over the open-stream limit, or over the connection memory budget. */
  streamsEvicted: number;
  /** Streams reset (RST_STREAM) or refused by GOAWAY before their response ended. */
  streamsReset: number;
  /** Calls flushed by the pair timeout or at connection close without a complete response. */
  unanswered: number;
  /** Responses whose request was not captured (h2c upgrade excluded). */
  orphanResponses: number;
  /** onGap calls and the bytes they reported. */
  gaps: number;
  gapBytes: number;
  /** Times frame boundaries were lost (gap at a frame header, invalid frame header) and bytes dropped looking for the next one. */
  resyncs: number;
  bytesSkipped: number;
  /** Header blocks that could not be decoded (lost, oversized, malformed, interrupted): each loses that direction's HPACK context. */
  headerBlocksLost: number;
  /** Header fields left out because they referenced dynamic-table entries lost with the context. */
  headerFieldsUnknown: number;
  /** Bodies whose kept bytes were cut (maxBodyBytes, connection budget). */
  bodiesTruncated: number;
  /** Items the sink threw on. */
  emitErrors: number;
  /** Exceptions caught at the parser boundary (a bug: should stay 0; see http2LastInternalError()). */
  internalErrors: number;
}

function zero(): Http2Stats {
  return {
    items: 0, itemsWithError: 0, grpcItems: 0, streamsEvicted: 0, streamsReset: 0, unanswered: 0, orphanResponses: 0,
    gaps: 0, gapBytes: 0, resyncs: 0, bytesSkipped: 0, headerBlocksLost: 0, headerFieldsUnknown: 0, bodiesTruncated: 0,
    emitErrors: 0, internalErrors: 0,
  };
}

/** The live counters (mutated in place by the parsers). */
export const h2stats: Http2Stats = zero();

let lastInternal = '';

/** A snapshot of the counters of every HTTP/2 parser of this process. */
export function http2Stats(): Http2Stats {
  return { ...h2stats };
}

/** Records an exception caught at the parser boundary. */
export function noteHttp2InternalError(e: unknown): void {
  h2stats.internalErrors++;
  lastInternal = String((e as Error | null)?.stack ?? e);
}

/** The stack of the last exception caught at the parser boundary ('' if none). */
export function http2LastInternalError(): string {
  return lastInternal;
}

/** Zeroes the counters (tests, or a status reporter that publishes deltas). */
export function resetHttp2Stats(): void {
  Object.assign(h2stats, zero());
  lastInternal = '';
}
