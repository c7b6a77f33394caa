/**
 * Hub actions from the JetStream stream WS_HUB_ACTIONS through the durable
 * pull consumer `hub`, into the scripts' onHubAction.
 *
 * Delivery is at-least-once: an action is acknowledged only after
 * onHubAction ran for it, so an action fetched by a hub that dies before the
 * ack is redelivered (after ACTION_ACK_WAIT) to the next one. Within one
 * process, a second delivery of an action already run (its ack was lost, or
 * a crashed nats-server came back with an older consumer state and sends it
 * again) is recognised by its stream position (sequence and store time, the
 * last 16384 actions) and only acknowledged again; so a duplicate onHubAction
 * call needs the hub itself to die between running an action and
 * acknowledging it.
 *
 * - Bounded: at most ACTION_MAX_IN_FLIGHT actions are fetched and not yet
 *   acknowledged (the pull batch and the consumer's max_ack_pending).
 * - Never poisoned: a message that is not a HubAction (undecodable protobuf,
 *   object not JSON, no action name) is acknowledged and counted.
 * - A script that throws in onHubAction is the script's fault: reported by
 *   the engine (console error line), and the action is acknowledged.
 * - A host failure (the engine unusable) naks the action with a delay; the
 *   stream gives up after ACTION_MAX_DELIVER deliveries (then it is counted
 *   as abandoned and terminated).
 */
import {
  AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, ReplayPolicy, jetstream, jetstreamManager,
  type ConsumerConfig, type ConsumerMessages, type JsMsg,
} from '@nats-io/jetstream';
import type { ScriptEngine } from '@wirescript/engine';
import { ensureStream, messagingAttributes, type NatsConnection } from '@wirescript/nats';
import { HUB_ACTIONS_CONSUMER, HUB_ACTIONS_STREAM, HUB_ACTIONS_SUBJECT, HubAction, decodeMessage } from '@wirescript/proto';
import type { Logger } from '@wirescript/script-host';
import { withConsumerSpan } from '@wirescript/telemetry';

/** Same stream settings as every script-runner uses (ensureStream would otherwise flip them back and forth). */
export const HUB_ACTIONS_STREAM_OPTIONS = { name: HUB_ACTIONS_STREAM, subjects: [HUB_ACTIONS_SUBJECT], maxAge: 24 * 3600_000 };

export interface ActionConsumerOptions {
  maxInFlight: number;
  ackWaitMs: number;
  maxDeliver: number;
  tracing: boolean;
  log: Logger;
}

export interface ActionCounters {
  /** Messages handed to the hub (deliveries, redeliveries included). */
  received: number;
  /** onHubAction ran (once per action, as far as this process knows). */
  processed: number;
  /** Not a valid HubAction: acknowledged and dropped. */
  invalid: number;
  /** Deliveries that were redeliveries. */
  redelivered: number;
  /** Redeliveries of actions this process already ran: acknowledged again, not run again. */
  duplicatesSkipped: number;
  /** Host failures (not script errors): the action was nak'ed for a later retry. */
  failed: number;
  /** Actions given up after ACTION_MAX_DELIVER deliveries. */
  abandoned: number;
  /** Times the consumer (or stream) was found missing and created again. */
  consumerRecreated: number;
}

const NS_PER_MS = 1_000_000;
const MAX_BACKOFF_MS = 5 * 60_000;
const RECENT = 16_384;
const yieldNow = () => new Promise<void>((r) => setImmediate(r));

/** Redelivery waits: ACTION_ACK_WAIT, then doubling up to 5 minutes (one per redelivery). */
export function redeliveryBackoff(ackWaitMs: number, maxDeliver: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < maxDeliver - 1 && i < 10; i++) out.push(Math.min(MAX_BACKOFF_MS, ackWaitMs * 2 ** i));
  return out;
}

/** The consumer configuration the hub wants. */
export function consumerConfig(o: Pick<ActionConsumerOptions, 'maxInFlight' | 'ackWaitMs' | 'maxDeliver'>): Partial<ConsumerConfig> & { durable_name: string } {
  const backoff = redeliveryBackoff(o.ackWaitMs, o.maxDeliver);
  return {
    durable_name: HUB_ACTIONS_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    filter_subject: HUB_ACTIONS_SUBJECT,
    max_ack_pending: o.maxInFlight,
    ack_wait: o.ackWaitMs * NS_PER_MS,
    max_deliver: o.maxDeliver,
    ...(backoff.length > 0 ? { backoff: backoff.map((ms) => ms * NS_PER_MS) } : {}),
    description: 'wirescript hub: onHubAction (ack after the hook ran)',
  };
}

/** A set of the last RECENT stream positions run, to recognise redeliveries of actions already run. */
class RecentActions {
  readonly #ring: string[] = new Array<string>(RECENT).fill('');
  readonly #set = new Set<string>();
  #next = 0;

  has(k: string): boolean {
    return this.#set.has(k);
  }

  add(k: string): void {
    const old = this.#ring[this.#next];
    if (old !== '') this.#set.delete(old);
    this.#ring[this.#next] = k;
    this.#set.add(k);
    this.#next = (this.#next + 1) % RECENT;
  }
}

export class ActionConsumer {
  readonly counters: ActionCounters = {
    received: 0, processed: 0, invalid: 0, redelivered: 0, duplicatesSkipped: 0, failed: 0, abandoned: 0, consumerRecreated: 0,
  };
  /** Actions waiting in the stream plus those fetched and not acknowledged (updated by refreshBacklog). */
  backlog = 0;
  /** When an action was last handled (liveness: fetched actions and no progress means wedged). */
  lastProgressAt = Date.now();
  private readonly nc: NatsConnection;
  private readonly engine: ScriptEngine;
  private readonly opts: ActionConsumerOptions;
  private readonly recent = new RecentActions();
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private bound = false;
  private lastRepair = 0;
  private replacing = false;

  constructor(nc: NatsConnection, engine: ScriptEngine, opts: ActionConsumerOptions) {
    this.nc = nc;
    this.engine = engine;
    this.opts = opts;
  }

  /** True once the consumer exists and messages are being pulled. */
  get ready(): boolean {
    return this.bound;
  }

  /** Actions fetched into this process and not yet handled. */
  get fetched(): number {
    return this.messages?.getPending() ?? 0;
  }

  /** Creates (or updates) the stream and the durable consumer, then starts pulling. */
  async start(): Promise<void> {
    await ensureStream(this.nc, HUB_ACTIONS_STREAM_OPTIONS);
    await this.ensureConsumer();
    await this.consume();
    this.bound = true;
  }

  private async ensureConsumer(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    const want = consumerConfig(this.opts);
    let info;
    try {
      info = await jsm.consumers.info(HUB_ACTIONS_STREAM, HUB_ACTIONS_CONSUMER);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
    }
    if (!info) {
      await jsm.consumers.add(HUB_ACTIONS_STREAM, want);
      return;
    }
    const c = info.config;
    const same = c.max_ack_pending === want.max_ack_pending && c.ack_wait === want.ack_wait && c.max_deliver === want.max_deliver &&
      c.filter_subject === want.filter_subject && JSON.stringify(c.backoff ?? []) === JSON.stringify(want.backoff ?? []) &&
      c.ack_policy === want.ack_policy;
    if (same) return;
    if (c.ack_policy !== want.ack_policy) {
      throw new Error(`consumer ${HUB_ACTIONS_CONSUMER} on ${HUB_ACTIONS_STREAM} exists with ack policy ${c.ack_policy}; delete it so the hub can create it with explicit acks`);
    }
    this.opts.log.info(`updating consumer ${HUB_ACTIONS_CONSUMER} on ${HUB_ACTIONS_STREAM} to the configured limits`);
    await jsm.consumers.update(HUB_ACTIONS_STREAM, HUB_ACTIONS_CONSUMER, {
      max_ack_pending: want.max_ack_pending, ack_wait: want.ack_wait, max_deliver: want.max_deliver,
      filter_subject: want.filter_subject, backoff: want.backoff ?? [], description: want.description,
    });
  }

  private async consume(): Promise<void> {
    const js = jetstream(this.nc);
    const consumer = await js.consumers.get(HUB_ACTIONS_STREAM, HUB_ACTIONS_CONSUMER);
    const max = this.opts.maxInFlight;
    const messages = await consumer.consume({ max_messages: max, threshold_messages: Math.max(1, Math.floor(max / 4)), expires: 30_000 });
    this.messages = messages;
    void this.watchStatus(messages);
    this.loop = this.run(messages);
  }

  /** The consumer or the stream vanished (deleted by an operator, or a server that lost its store): put them back. */
  private async watchStatus(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (this.stopping) return;
      if (s.type !== 'consumer_deleted' && s.type !== 'consumer_not_found' && s.type !== 'stream_not_found') continue;
      // At most one repair per 2 s (a deleted stream reports on every pull), but never skipped.
      const wait = this.lastRepair + 2_000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
      if (this.stopping) return;
      this.lastRepair = Date.now();
      this.opts.log.warn(`hub actions: ${s.type.replace(/_/g, ' ')}; creating stream ${HUB_ACTIONS_STREAM} and consumer ${HUB_ACTIONS_CONSUMER} again`);
      try {
        await ensureStream(this.nc, HUB_ACTIONS_STREAM_OPTIONS);
        await this.ensureConsumer();
        this.counters.consumerRecreated++;
        // The pulls in flight were for the old consumer: pull afresh from the new one.
        await this.reconsume();
      } catch (err) {
        this.opts.log.warn(`hub actions: cannot recreate the consumer yet: ${(err as Error).message}`);
      }
    }
  }

  private async reconsume(): Promise<void> {
    this.replacing = true;
    try {
      void this.messages?.close();
      await this.loop;
    } finally {
      this.replacing = false;
    }
    if (!this.stopping) await this.consume();
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    let sinceYield = 0;
    try {
      for await (const m of messages) {
        this.handle(m);
        this.lastProgressAt = Date.now();
        // The iterator hands buffered messages over in microtasks: let the event loop turn now and then.
        if (++sinceYield >= 64) {
          sinceYield = 0;
          await yieldNow();
        }
      }
    } catch (err) {
      if (!this.stopping) this.opts.log.error(`hub actions: consumer stopped: ${(err as Error).message}`);
    }
    if (!this.stopping && !this.replacing) {
      // The iterator ended on its own (a fatal consumer error): pull again.
      this.bound = false;
      void this.resume();
    }
  }

  private async resume(): Promise<void> {
    let wait = 1_000;
    while (!this.stopping) {
      await new Promise((r) => setTimeout(r, wait).unref());
      if (this.stopping) return;
      try {
        await this.ensureConsumer();
        await this.consume();
        this.bound = true;
        this.opts.log.info('hub actions: consuming again');
        return;
      } catch (err) {
        this.opts.log.error(`hub actions: cannot resume consuming (retrying in ${wait * 2} ms): ${(err as Error).message}`);
        wait = Math.min(wait * 2, 30_000);
      }
    }
  }

  private handle(m: JsMsg): void {
    const k = this.counters;
    k.received++;
    const deliveries = m.info.deliveryCount;
    const position = `${m.seq}@${m.info.timestampNanos}`;
    if (deliveries > 1) k.redelivered++;
    // Not only redeliveries: a server that crashed may have lost the consumer's
    // ack floor and delivery counts, and sends acknowledged actions as new.
    if (this.recent.has(position)) {
      k.duplicatesSkipped++;
      m.ack();
      return;
    }
    let action: string;
    let object: unknown;
    try {
      const a = decodeMessage(HubAction, m.data, 'wirescript.v1.HubAction');
      if (a.action === '') throw new Error('action name is empty');
      action = a.action;
      object = a.objectJson.length === 0 ? null : JSON.parse(Buffer.from(a.objectJson.buffer, a.objectJson.byteOffset, a.objectJson.byteLength).toString('utf8'));
    } catch (err) {
      k.invalid++;
      if (k.invalid <= 10 || k.invalid % 1000 === 0) {
        this.opts.log.warn(`invalid hub action (stream sequence ${m.seq}, ${k.invalid} so far), acknowledged and dropped: ${(err as Error).message}`);
      }
      m.ack();
      return;
    }
    try {
      if (this.opts.tracing) {
        withConsumerSpan(`process ${HUB_ACTIONS_SUBJECT}`, m.headers, () => this.engine.hubAction(action, object), {
          attributes: { ...messagingAttributes(HUB_ACTIONS_SUBJECT, 'process', m.data.byteLength), 'wirescript.hub.action': action },
        });
      } else {
        this.engine.hubAction(action, object);
      }
    } catch (err) {
      // Not a script error (the engine reports those itself): the host could not run it.
      k.failed++;
      if (deliveries >= this.opts.maxDeliver) {
        k.abandoned++;
        this.opts.log.error(`hub action "${action}" (stream sequence ${m.seq}) abandoned after ${deliveries} deliveries: ${(err as Error).message}`);
        m.term(`abandoned after ${deliveries} deliveries: ${(err as Error).message}`);
      } else {
        this.opts.log.error(`hub action "${action}" (stream sequence ${m.seq}) failed, retried later: ${(err as Error).message}`);
        m.nak(Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (deliveries - 1)));
      }
      return;
    }
    this.recent.add(position);
    k.processed++;
    m.ack();
  }

  /** Asks the server how many actions wait (for status); never throws. */
  async refreshBacklog(): Promise<void> {
    try {
      const jsm = await jetstreamManager(this.nc, { timeout: 2_000 });
      const info = await jsm.consumers.info(HUB_ACTIONS_STREAM, HUB_ACTIONS_CONSUMER);
      this.backlog = info.num_pending + info.num_ack_pending;
    } catch {
      // NATS away: keep the last value.
    }
  }

  /**
   * Stops pulling; actions already fetched are still run and acknowledged
   * (within timeoutMs). Actions the server sent after that are redelivered
   * to the next hub after ACTION_ACK_WAIT.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.bound = false;
    const loop = this.loop;
    void this.messages?.close();
    if (!loop) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([loop.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    return done;
  }
}
