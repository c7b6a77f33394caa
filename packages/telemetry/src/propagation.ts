import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';

/** Anything headers can be written to: nats.js `MsgHdrs`, a `Map`, fetch `Headers`. */
export interface HeaderWriter {
  set(key: string, value: string): unknown;
}

/** Anything headers can be read from: nats.js `MsgHdrs`, a `Map`, fetch `Headers`. */
export interface HeaderReader {
  get(key: string): string | null | undefined;
  keys?(): Iterable<string>;
}

let defaultTracerName = 'wirescript';

/** Set by initTelemetry so helper spans carry the service as instrumentation scope. */
export function setDefaultTracerName(name: string): void {
  defaultTracerName = name;
}

function tracerOf(tracer: Tracer | undefined): Tracer {
  // Looked up per call: a cached proxy would keep a provider that a test (or `up`) has shut down.
  return tracer ?? trace.getTracer(defaultTracerName);
}

const setter: TextMapSetter<HeaderWriter> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

const getter: TextMapGetter<HeaderReader> = {
  keys(carrier) {
    return carrier.keys ? [...carrier.keys()] : [];
  },
  get(carrier, key) {
    // MsgHdrs.get returns "" for a missing key, Map returns undefined, Headers null.
    const exact = carrier.get(key);
    if (exact) return exact;
    if (!carrier.keys) return undefined;
    // Other clients (Go's http.Header canonicalisation) may write `Traceparent`.
    const lower = key.toLowerCase();
    for (const k of carrier.keys()) {
      if (k !== key && k.toLowerCase() === lower) return carrier.get(k) || undefined;
    }
    return undefined;
  },
};

/** Writes the W3C `traceparent` (and `tracestate`, baggage) of `ctx` (default: active) into `headers`. */
export function injectContext(headers: HeaderWriter, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, setter);
}

/**
 * Reads the trace context from message headers. The base is the root context,
 * not the active one: a message's parent is whoever sent it, not whatever span
 * happens to be active in the subscription loop.
 */
export function extractContext(headers: HeaderReader | undefined, base: Context = ROOT_CONTEXT): Context {
  return headers ? propagation.extract(base, headers, getter) : base;
}

export interface SpanHelperOptions {
  tracer?: Tracer;
  attributes?: Attributes;
}

/**
 * Starts a PRODUCER span (child of `parent`, default the active context) and
 * returns it with a context holding it, to pass to `injectContext`. The caller ends the span.
 */
export function startProducerSpan(
  name: string,
  attributes?: Attributes,
  opts: { tracer?: Tracer; parent?: Context } = {},
): { span: Span; context: Context } {
  const parent = opts.parent ?? context.active();
  const span = tracerOf(opts.tracer).startSpan(name, { kind: SpanKind.PRODUCER, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

function fail(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/**
 * Runs `fn` inside a CONSUMER span whose parent is the context carried by
 * `headers`; the span is active during `fn` (so spans and publishes in it are
 * children) and ends when `fn` returns or its promise settles. Errors are
 * recorded on the span and rethrown.
 */
export function withConsumerSpan<T>(
  name: string,
  headers: HeaderReader | undefined,
  fn: (span: Span) => T,
  opts: SpanHelperOptions & { links?: Link[] } = {},
): T {
  const parent = extractContext(headers);
  const span = tracerOf(opts.tracer).startSpan(name, { kind: SpanKind.CONSUMER, attributes: opts.attributes, links: opts.links }, parent);
  let result: T;
  try {
    result = context.with(trace.setSpan(parent, span), fn, undefined, span);
  } catch (err) {
    fail(span, err);
    span.end();
    throw err;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => {
        span.end();
        return v;
      },
      (err: unknown) => {
        fail(span, err);
        span.end();
        throw err;
      },
    ) as T;
  }
  span.end();
  return result;
}
