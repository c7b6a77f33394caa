// @wirescript/pod-map: the IP -> pod map in the JetStream KV bucket ws_pods.
// The hub writes it (PodMapWriter) from its pod watch; capture reads it
// (PodDirectory) to fill `src`/`dst` `name` and `namespace` in items.
//
// Bucket: ws_pods (POD_MAP_BUCKET), one value per key.
// Key:    the pod IP with '.' -> '_' and ':' -> '-' (podMapKey): 10_1_2_3, fd00--1.
// Value:  JSON {"name", "namespace", "node", "uid"} of the pod owning the IP.
export { POD_MAP_BUCKET, canonicalIp, podMapKey, ipFromPodMapKey, podKey, podIps, podMapEntry, podCreatedMs, type PodMapEntry, type PodLike } from './keys.ts';
export { openPodMapKv, readBucket } from './bucket.ts';
export { PodMapWriter, type PodMapWriterOptions, type PodMapWriterStats } from './writer.ts';
export { PodDirectory, type PodDirectoryOptions, type PodDirectoryStats, type PodRef } from './directory.ts';
