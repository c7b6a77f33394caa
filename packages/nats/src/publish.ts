import { isSpanContextValid, SpanStatusCode, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { injectContext, startProducerSpan, withConsumerSpan } from '@wirescript/telemetry';

export interface PublishWithTraceOptions {
  /** Headers to send; trace headers are added to them (a new set is made when omitted). */
  headers?: MsgHdrs;
  reply?: string;
  /** Extra span attributes. */
  attributes?: Attributes;
  tracer?: Tracer;
}

/** OTel messaging attributes for a NATS subject. */
export function messagingAttributes(subject: string, operation: 'send' | 'process', bodySize?: number): Attributes {
  return {
    'messaging.system': 'nats',
    'messaging.destination.name': subject,
    'messaging.operation.type': operation,
    ...(bodySize !== undefined ? { 'messaging.message.body.size': bodySize } : {}),
  };
}

/**
 * Publishes inside a PRODUCER span (child of the active span) and carries the
 * trace context in the message headers (`traceparent`). With no trace to carry
 * and no headers of its own, the message is sent without headers (cheaper).
 */
export function publishWithTrace(nc: NatsConnection, subject: string, payload: Uint8Array, opts: PublishWithTraceOptions = {}): void {
  const { span, context } = startProducerSpan(
    `publish ${subject}`,
    { ...messagingAttributes(subject, 'send', payload.byteLength), ...opts.attributes },
    { tracer: opts.tracer },
  );
  try {
    let h = opts.headers;
    if (isSpanContextValid(span.spanContext())) {
      h ??= natsHeaders();
      injectContext(h, context);
    }
    nc.publish(subject, payload, { headers: h, reply: opts.reply });
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

/**
 * Runs `fn` for a received message inside a CONSUMER span whose parent is the
 * publisher's span (from the message headers). See `withConsumerSpan`.
 */
export function withMsgSpan<T>(msg: Msg, fn: (span: Span) => T, opts: { tracer?: Tracer; attributes?: Attributes } = {}): T {
  return withConsumerSpan(`process ${msg.subject}`, msg.headers, fn, {
    tracer: opts.tracer,
    attributes: { ...messagingAttributes(msg.subject, 'process', msg.data.byteLength), ...opts.attributes },
  });
}
