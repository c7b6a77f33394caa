// The closed vocabularies of the string fields of the wirescript.v1 messages
// (the proto fields are plain strings so that external consumers and the
// script surface see the same words). Keep in sync with the proto comments.

/** wirescript.v1.ConsoleLine.level: console.log, console.error (or a script error), console.clear. */
export const CONSOLE_LEVELS = ['log', 'error', 'clear'] as const;
/** One of CONSOLE_LEVELS. */
export type ConsoleLevel = (typeof CONSOLE_LEVELS)[number];

/** wirescript.v1.PodEvent.event: the Kubernetes watch event types passed to onPodEvent. */
export const POD_EVENT_TYPES = ['ADDED', 'MODIFIED', 'DELETED'] as const;
/** One of POD_EVENT_TYPES. */
export type PodEventType = (typeof POD_EVENT_TYPES)[number];

/** wirescript.v1.JobEvent.event: job lifecycle changes. */
export const JOB_EVENT_TYPES = ['scheduled', 'passed', 'failed', 'removed'] as const;
/** One of JOB_EVENT_TYPES. */
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

/** wirescript.v1.JobControlRequest.op: list, jobs.run/runAll, jobs.remove/removeAll, scheduler start/stop. */
export const JOB_CONTROL_OPS = ['list', 'run', 'remove', 'start', 'stop'] as const;
/** One of JOB_CONTROL_OPS. */
export type JobControlOp = (typeof JOB_CONTROL_OPS)[number];

/** Service names: the <service> token of ws.status.*, ReplicaStatus.service, ConsoleLine.service. */
export const SERVICE_NAMES = ['capture', 'script-runner', 'hub', 'config-sync', 'dashboard-api'] as const;
/** One of SERVICE_NAMES. */
export type ServiceName = (typeof SERVICE_NAMES)[number];

/**
 * Well-known keys of wirescript.v1.ReplicaStatus.counters (cumulative since
 * the replica started; absent means 0). Services may add others, snake_case.
 */
export const COUNTERS = {
  /** Items received from NATS (script-runner) or reassembled (capture). */
  itemsReceived: 'items_received',
  /** Items passed through every active script's onItemCaptured. */
  itemsProcessed: 'items_processed',
  /** Items dropped: slow consumer, queue overflow, publish failure. */
  itemsDropped: 'items_dropped',
  /** Packets captured (capture) or packet summaries received (script-runner). */
  packetsReceived: 'packets_received',
  /** Packets or packet summaries dropped, including kernel capture drops. */
  packetsDropped: 'packets_dropped',
  /** Hook calls into scripts. */
  hookCalls: 'hook_calls',
  /** Hook calls that threw, timed out or ran out of memory. */
  hookErrors: 'hook_errors',
  /** Hook calls stopped for exceeding their time budget. */
  hookTimeouts: 'hook_timeouts',
  /** hub.action calls published. */
  hubActionsSent: 'hub_actions_sent',
  /** Console lines dropped before publishing. */
  logsDropped: 'logs_dropped',
  /** TCP flows evicted from the reassembly table before completion. */
  flowsEvicted: 'flows_evicted',
  /** Packets dropped by the kernel or the capture library. */
  kernelDrops: 'kernel_drops',
} as const;
/** One of the well-known counter keys. */
export type CounterName = (typeof COUNTERS)[keyof typeof COUNTERS];
