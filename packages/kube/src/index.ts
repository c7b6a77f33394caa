export { kubeConfigFrom, KubeConfigError, type KubeConfigOptions } from './config.ts';
export {
  watchResource,
  WatchResourceError,
  type WatchEvent,
  type WatchOptions,
  type ResourceWatcher,
  type ResourceWatcherStats,
} from './watch.ts';
export { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
