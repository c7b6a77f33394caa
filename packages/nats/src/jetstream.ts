import {
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export class KvError extends Error {
  override readonly name = 'KvError';
}

export class StreamError extends Error {
  override readonly name = 'StreamError';
}

/** JetStream API code for "stream name already in use with a different configuration" (a create race). */
const STREAM_NAME_IN_USE = 10058;

function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

export interface OpenKvOptions {
  /** Values kept per key (1–64) when the bucket is created. */
  history?: number;
  /** Create the bucket when missing (the writer, config-sync); readers pass false and fail if it is not there. */
  create: boolean;
  /** Other bucket settings used on create (ttl, maxBytes, storage, ...). */
  extra?: Partial<KvOptions>;
}

/**
 * Opens a JetStream KV bucket, creating it if asked. Without `create`, a
 * missing bucket is an immediate KvError (not a failure on first read).
 */
export async function openKv(nc: NatsConnection, bucket: string, opts: OpenKvOptions): Promise<KV> {
  const kvm = new Kvm(nc);
  if (opts.create) {
    try {
      // Creates, or opens the existing bucket (its settings are left as they are).
      return await kvm.create(bucket, { history: opts.history ?? 1, ...opts.extra });
    } catch (err) {
      throw new KvError(`cannot create KV bucket ${bucket}: ${(err as Error).message}`, { cause: err });
    }
  }
  let kv: KV;
  try {
    kv = await kvm.open(bucket, opts.extra);
    // open() is lazy: ask for the status so a missing bucket fails here.
    await kv.status();
  } catch (err) {
    const missing = isApiError(err, JetStreamApiCodes.StreamNotFound);
    throw new KvError(
      missing ? `KV bucket ${bucket} does not exist (it is created by its writer)` : `cannot open KV bucket ${bucket}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return kv;
}

export interface EnsureStreamOptions {
  name: string;
  subjects: string[];
  /** Oldest message kept, ms (0 or omitted: unlimited). */
  maxAge?: number;
  /** Messages kept (-1 or omitted: unlimited). */
  maxMsgs?: number;
  /** Bytes kept (-1 or omitted: unlimited). */
  maxBytes?: number;
  /** Default file. */
  storage?: 'file' | 'memory';
  replicas?: number;
}

function wanted(opts: EnsureStreamOptions): Partial<StreamConfig> & { name: string } {
  return {
    name: opts.name,
    subjects: [...opts.subjects],
    max_age: (opts.maxAge ?? 0) * 1_000_000,
    max_msgs: opts.maxMsgs ?? -1,
    max_bytes: opts.maxBytes ?? -1,
    storage: opts.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: opts.replicas ?? 1,
  };
}

function sameSubjects(a: readonly string[] | undefined, b: readonly string[]): boolean {
  const sa = new Set(a ?? []);
  return sa.size === new Set(b).size && b.every((s) => sa.has(s));
}

/**
 * Makes sure a stream exists with these subjects and limits: creates it, or
 * updates the subjects/limits of an existing one if they differ, and leaves
 * it alone otherwise. Safe to call from every replica at startup.
 * (Storage type cannot change on an existing stream: that is a StreamError.)
 */
export async function ensureStream(nc: NatsConnection, opts: EnsureStreamOptions): Promise<StreamInfo> {
  const want = wanted(opts);
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (err) {
    throw new StreamError(`cannot use JetStream for stream ${opts.name} (is the server started with -js?): ${(err as Error).message}`, {
      cause: err,
    });
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    let info: StreamInfo | undefined;
    try {
      info = await jsm.streams.info(opts.name);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw new StreamError(`cannot look up stream ${opts.name}: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (!info) return await jsm.streams.add(want);
      const c = info.config;
      if (c.storage !== want.storage) {
        throw new StreamError(`stream ${opts.name} exists with ${c.storage} storage, ${want.storage} was asked; delete it to change storage`);
      }
      const same =
        sameSubjects(c.subjects, want.subjects ?? []) &&
        c.max_age === want.max_age &&
        c.max_msgs === want.max_msgs &&
        c.max_bytes === want.max_bytes &&
        c.num_replicas === want.num_replicas;
      if (same) return info;
      return await jsm.streams.update(opts.name, {
        subjects: want.subjects,
        max_age: want.max_age,
        max_msgs: want.max_msgs,
        max_bytes: want.max_bytes,
        num_replicas: want.num_replicas,
      });
    } catch (err) {
      if (err instanceof StreamError) throw err;
      // Another replica created it between our lookup and our add: look again.
      if (attempt === 0 && isApiError(err, STREAM_NAME_IN_USE)) continue;
      throw new StreamError(`cannot create or update stream ${opts.name}: ${(err as Error).message}`, { cause: err });
    }
  }
  throw new StreamError(`cannot create stream ${opts.name}: it keeps changing under us`);
}
