/** hub.action(action, object): moves an object from a worker to the hub's onHubAction. */
import type { HelperModule } from './types.ts';

export const hubHelper: HelperModule = {
  name: 'hub',
  host: (h) => ({
    hub_action(slot, action, json) {
      const s = h.script(Number(slot));
      h.output.hubAction({
        action: String(action),
        objectJson: String(json),
        scriptIndex: s?.index ?? -1,
        title: s?.title ?? '',
        timestampMs: Date.now(),
      });
      return undefined;
    },
  }),
  guest: `(function (host, D, G, cfg) {
    D.defineGlobal('hub', {
      action: function (action, object) {
        if (typeof action !== 'string' || action === '') throw new TypeError('hub.action(action, object): action must be a non-empty string');
        host.hub_action(D.cur, action, D.json(object === undefined ? null : object, 'hub.action'));
      }
    });
  })`,
};
