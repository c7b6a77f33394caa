export { Hub, SERVICE, podWatchPlan, type HubDeps, type HubCounters } from './hub.ts';
export { hubConfig, type HubConfig } from './config.ts';
export { ActionConsumer, HUB_ACTIONS_STREAM_OPTIONS, consumerConfig, redeliveryBackoff, type ActionCounters } from './actions.ts';
export { PodTracker, type Pod, type PodChange, type PodEventType } from './pods.ts';
