// @wirescript/proto: the protobuf contracts of wirescript (generated from
// proto/ by `npm run proto:gen`), the NATS subject names, and helpers.
//
// Messages are ts-proto objects: `Item.encode(msg).finish()`,
// `Item.decode(bytes)`, `Item.create({...})`, `Item.toJSON(msg)`; int64 fields
// are `number`s (unix milliseconds for timestamps), bytes fields are Buffers.

export * from './gen/wirescript/v1/items.ts';
export * from './gen/wirescript/v1/packets.ts';
export * from './gen/wirescript/v1/pods.ts';
export * from './gen/wirescript/v1/hub.ts';
export * from './gen/wirescript/v1/scripts.ts';
export * from './gen/wirescript/v1/console.ts';
export * from './gen/wirescript/v1/jobs.ts';
export * from './gen/wirescript/v1/status.ts';
export * from './gen/wirescript/dashboard/v1/dashboard.ts';
export * from './subjects.ts';
export * from './values.ts';
export * from './codec.ts';
