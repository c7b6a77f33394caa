// Binary encode/decode helpers over the ts-proto generated message objects,
// with decode errors that name the message type (bad input on the wire gets
// a clear error, never a crash).

import type { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { ConsoleLine } from './gen/wirescript/v1/console.ts';
import { HubAction } from './gen/wirescript/v1/hub.ts';
import { Item } from './gen/wirescript/v1/items.ts';
import { Job, JobControlReply, JobControlRequest, JobEvent } from './gen/wirescript/v1/jobs.ts';
import { PacketBatch, PacketInfo } from './gen/wirescript/v1/packets.ts';
import { PodEvent } from './gen/wirescript/v1/pods.ts';
import { Script, ScriptSet } from './gen/wirescript/v1/scripts.ts';
import { HookLatency, ReplicaStatus, ScriptStatus } from './gen/wirescript/v1/status.ts';

/**
 * What every generated message object (`Item`, `ScriptSet`, ...) provides:
 * binary and JSON codecs plus constructors. Use it to write code generic over
 * message types (e.g. a typed NATS publish/subscribe).
 */
export interface MessageCodec<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
  fromJSON(object: any): T;
  toJSON(message: T): unknown;
  create(base?: any): T;
  fromPartial(object: any): T;
}

/**
 * The messages sent over NATS (subjects and the KV bucket), by fully
 * qualified protobuf name.
 */
export const NATS_MESSAGES = {
  'wirescript.v1.Item': Item,
  'wirescript.v1.PacketBatch': PacketBatch,
  'wirescript.v1.PacketInfo': PacketInfo,
  'wirescript.v1.PodEvent': PodEvent,
  'wirescript.v1.HubAction': HubAction,
  'wirescript.v1.ScriptSet': ScriptSet,
  'wirescript.v1.Script': Script,
  'wirescript.v1.ConsoleLine': ConsoleLine,
  'wirescript.v1.JobEvent': JobEvent,
  'wirescript.v1.Job': Job,
  'wirescript.v1.JobControlRequest': JobControlRequest,
  'wirescript.v1.JobControlReply': JobControlReply,
  'wirescript.v1.ReplicaStatus': ReplicaStatus,
  'wirescript.v1.ScriptStatus': ScriptStatus,
  'wirescript.v1.HookLatency': HookLatency,
} as const;

const NAMES = new Map<unknown, string>(Object.entries(NATS_MESSAGES).map(([name, codec]) => [codec, name]));

/** The fully qualified protobuf name of a NATS message codec, or undefined. */
export function messageTypeName(codec: unknown): string | undefined {
  return NAMES.get(codec);
}

/** Thrown by decodeMessage when bytes are not a valid encoding of the message. */
export class ProtoDecodeError extends Error {
  /** Fully qualified protobuf name of the message (or 'message' if unknown). */
  readonly typeName: string;
  /** Length of the input in bytes. */
  readonly byteLength: number;

  constructor(typeName: string, byteLength: number, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`cannot decode ${typeName} from ${byteLength} bytes: ${why}`, { cause });
    this.name = 'ProtoDecodeError';
    this.typeName = typeName;
    this.byteLength = byteLength;
  }
}

/** Encodes a message to its binary protobuf form. */
export function encodeMessage<T>(codec: MessageCodec<T>, message: T): Uint8Array {
  return codec.encode(message).finish();
}

/**
 * Decodes the binary protobuf form of a message. Any failure (truncated
 * input, invalid wire type, 64-bit value beyond Number.MAX_SAFE_INTEGER, ...)
 * becomes a ProtoDecodeError naming the type; it never escapes as anything
 * else.
 */
export function decodeMessage<T>(codec: MessageCodec<T>, bytes: Uint8Array, typeName?: string): T {
  try {
    return codec.decode(bytes);
  } catch (err) {
    throw new ProtoDecodeError(typeName ?? messageTypeName(codec) ?? 'message', bytes?.length ?? 0, err);
  }
}
