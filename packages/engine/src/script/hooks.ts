/** The hook functions a script may define, in the order Kubeshark documents them. */
export const HOOK_NAMES = [
  'onItemCaptured',
  'onPacketCaptured',
  'onItemQueried',
  'onPodEvent',
  'onHubAction',
  'onJobPassed',
  'onJobFailed',
] as const;

export type HookName = (typeof HOOK_NAMES)[number];

export function isHookName(s: string): s is HookName {
  return (HOOK_NAMES as readonly string[]).includes(s);
}
