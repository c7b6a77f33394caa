// NATS subjects, JetStream names and queue groups of the wirescript
// contracts. Each one is documented in full (publisher, subscribers,
// message) at the top of the proto file named beside it; keep both in sync.
//
// Every variable part of a subject is one NATS token and goes through
// subjectToken(), so a node, namespace or replica name can never inject
// extra tokens or wildcards.

/** First token of every wirescript subject. */
export const SUBJECT_PREFIX = 'ws';

/** Characters that may not appear in a NATS subject token: separators, wildcards, whitespace, control characters. */
const INVALID_TOKEN_CHARS = /[.*>\s\u0000-\u001f\u007f]/gu;

/**
 * Makes `value` safe as one NATS subject token: `.`, `*`, `>`, whitespace
 * and control characters become `_`; an empty (or missing) value becomes
 * `_`. Other characters, including non-ASCII ones, are kept, so distinct
 * ordinary names stay distinct.
 */
export function subjectToken(value: string): string {
  if (value === undefined || value === null) return '_';
  const s = String(value);
  return s === '' ? '_' : s.replace(INVALID_TOKEN_CHARS, '_');
}

/** `*` for an empty or missing filter value, else the sanitised token. */
function filterToken(value: string | undefined): string {
  return value === undefined || value === '' ? '*' : subjectToken(value);
}

// --- ws.items.<node>.<protocol> — proto/wirescript/v1/items.proto ----------

/**
 * Subject of a reassembled item: `ws.items.<node>.<protocol>`. capture
 * publishes wirescript.v1.Item; script-runners subscribe with the queue group
 * RUNNER_QUEUE_GROUP. `protocol` is the item's `protocol.name` ("http",
 * "dns", "redis", ...).
 */
export function itemsSubject(node: string, protocol: string): string {
  return `${SUBJECT_PREFIX}.items.${subjectToken(node)}.${subjectToken(protocol)}`;
}

/** Every item of every node and protocol. */
export const ITEMS_WILDCARD = `${SUBJECT_PREFIX}.items.>`;

/** Subscription filter for items; an empty or missing part matches any (`*`). */
export function itemsFilter(node?: string, protocol?: string): string {
  return `${SUBJECT_PREFIX}.items.${filterToken(node)}.${filterToken(protocol)}`;
}

// --- ws.packets.<node> — proto/wirescript/v1/packets.proto ------------------

/**
 * Subject of packet summary batches of one node: `ws.packets.<node>`.
 * capture publishes wirescript.v1.PacketBatch; script-runners subscribe with
 * the queue group RUNNER_QUEUE_GROUP.
 */
export function packetsSubject(node: string): string {
  return `${SUBJECT_PREFIX}.packets.${subjectToken(node)}`;
}

/** Packet batches of every node. */
export const PACKETS_WILDCARD = `${SUBJECT_PREFIX}.packets.>`;

// --- ws.pods.<namespace> — proto/wirescript/v1/pods.proto -------------------

/**
 * Subject of pod events of one namespace: `ws.pods.<namespace>`. The hub
 * publishes wirescript.v1.PodEvent; every script-runner replica subscribes
 * (no queue group).
 */
export function podsSubject(namespace: string): string {
  return `${SUBJECT_PREFIX}.pods.${subjectToken(namespace)}`;
}

/** Pod events of every namespace. */
export const PODS_WILDCARD = `${SUBJECT_PREFIX}.pods.>`;

// --- ws.hub.actions — proto/wirescript/v1/hub.proto -------------------------

/**
 * Subject of `hub.action(action, object)` calls: script-runners (and the hub)
 * publish wirescript.v1.HubAction; the JetStream stream HUB_ACTIONS_STREAM
 * captures it and the hub consumes it through the durable consumer
 * HUB_ACTIONS_CONSUMER.
 */
export const HUB_ACTIONS_SUBJECT = `${SUBJECT_PREFIX}.hub.actions`;

/** JetStream stream capturing HUB_ACTIONS_SUBJECT. */
export const HUB_ACTIONS_STREAM = 'WS_HUB_ACTIONS';

/** Durable JetStream consumer of HUB_ACTIONS_STREAM used by the hub. */
export const HUB_ACTIONS_CONSUMER = 'hub';

// --- KV ws_scripts/active — proto/wirescript/v1/scripts.proto ---------------

/**
 * JetStream KV bucket holding the active script set. config-sync writes
 * wirescript.v1.ScriptSet under SCRIPTS_KV_KEY; script-runners and the hub
 * watch it. The value holds secret env values: never log or echo them.
 */
export const SCRIPTS_KV_BUCKET = 'ws_scripts';

/** Key of the script set in SCRIPTS_KV_BUCKET. */
export const SCRIPTS_KV_KEY = 'active';

// --- ws.logs.<node>.<replica> — proto/wirescript/v1/console.proto -----------

/**
 * Subject of script console lines and script errors of one replica:
 * `ws.logs.<node>.<replica>`. script-runners and the hub publish
 * wirescript.v1.ConsoleLine; dashboard-api and the CLI subscribe.
 */
export function logsSubject(node: string, replica: string): string {
  return `${SUBJECT_PREFIX}.logs.${subjectToken(node)}.${subjectToken(replica)}`;
}

/** Console lines of every replica. */
export const LOGS_WILDCARD = `${SUBJECT_PREFIX}.logs.>`;

/** Subscription filter for console lines; an empty or missing part matches any (`*`). */
export function logsFilter(node?: string, replica?: string): string {
  return `${SUBJECT_PREFIX}.logs.${filterToken(node)}.${filterToken(replica)}`;
}

// --- ws.jobs.<node>.<replica>, ws.control.jobs — proto/wirescript/v1/jobs.proto

/**
 * Subject of job lifecycle events of one replica: `ws.jobs.<node>.<replica>`.
 * script-runners and the hub publish wirescript.v1.JobEvent.
 */
export function jobsSubject(node: string, replica: string): string {
  return `${SUBJECT_PREFIX}.jobs.${subjectToken(node)}.${subjectToken(replica)}`;
}

/** Job events of every replica. */
export const JOBS_WILDCARD = `${SUBJECT_PREFIX}.jobs.>`;

/** Subscription filter for job events; an empty or missing part matches any (`*`). */
export function jobsFilter(node?: string, replica?: string): string {
  return `${SUBJECT_PREFIX}.jobs.${filterToken(node)}.${filterToken(replica)}`;
}

/**
 * Request subject of the job control channel (scatter-gather): dashboard-api
 * sends wirescript.v1.JobControlRequest with a reply inbox; every
 * script-runner and hub replica subscribes (no queue group) and each matching
 * replica replies with one wirescript.v1.JobControlReply.
 */
export const JOBS_CONTROL_SUBJECT = `${SUBJECT_PREFIX}.control.jobs`;

// --- ws.status.<service>.<replica> — proto/wirescript/v1/status.proto -------

/**
 * Subject of the periodic status of one replica: `ws.status.<service>.<replica>`.
 * Every service replica publishes wirescript.v1.ReplicaStatus; dashboard-api
 * keeps the latest per replica.
 */
export function statusSubject(service: string, replica: string): string {
  return `${SUBJECT_PREFIX}.status.${subjectToken(service)}.${subjectToken(replica)}`;
}

/** Status of every replica of every service. */
export const STATUS_WILDCARD = `${SUBJECT_PREFIX}.status.>`;

/** Subscription filter for replica status; an empty or missing part matches any (`*`). */
export function statusFilter(service?: string, replica?: string): string {
  return `${SUBJECT_PREFIX}.status.${filterToken(service)}.${filterToken(replica)}`;
}

// --- queue groups and names -------------------------------------------------

/** Queue group of script-runner on ITEMS_WILDCARD and PACKETS_WILDCARD: N replicas share the load. */
export const RUNNER_QUEUE_GROUP = 'script-runner';

/** Node name of the hub (what `utils.nodeName()` returns in hub mode), used as the <node> token. */
export const HUB_NODE_NAME = 'hub';
