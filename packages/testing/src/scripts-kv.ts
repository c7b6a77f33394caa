/** Test helper: writes a script set into the ws_scripts KV bucket as config-sync would. */
import { openKv, type NatsConnection } from '@wirescript/nats';
import { SCRIPTS_KV_BUCKET, SCRIPTS_KV_KEY, ScriptSet, encodeMessage } from '@wirescript/proto';

let revision = 0;

export async function putScriptSet(
  nc: NatsConnection,
  scripts: { index?: number; title?: string; code: string; active?: boolean }[],
  env: Record<string, string> = {},
): Promise<number> {
  const kv = await openKv(nc, SCRIPTS_KV_BUCKET, { create: true, history: 5 });
  revision++;
  await kv.put(SCRIPTS_KV_KEY, encodeMessage(ScriptSet, ScriptSet.fromPartial({
    revision,
    scripts: scripts.map((s, i) => ({ index: s.index ?? i, title: s.title ?? '', code: s.code, active: s.active ?? true })),
    env,
    source: 'test',
    updatedAtMs: Date.now(),
  })));
  return revision;
}
