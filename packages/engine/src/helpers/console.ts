/** console.log / console.error / console.clear: one line per call, arguments joined by spaces, objects as JSON. */
import type { HelperModule } from './types.ts';

export const consoleHelper: HelperModule = {
  name: 'console',
  host: (h) => ({
    console_write(slot, level, text) {
      const s = h.script(Number(slot));
      h.output.console({
        scriptIndex: s?.index ?? -1,
        title: s?.title ?? '',
        level: level === 'error' ? 'error' : level === 'clear' ? 'clear' : 'log',
        text: String(text),
        timestampMs: Date.now(),
      });
      return undefined;
    },
  }),
  guest: `(function (host, D, G, cfg) {
    D.defineGlobal('console', {
      log: function () { host.console_write(D.cur, 'log', D.fmt(arguments)); },
      info: function () { host.console_write(D.cur, 'log', D.fmt(arguments)); },
      warn: function () { host.console_write(D.cur, 'error', D.fmt(arguments)); },
      error: function () { host.console_write(D.cur, 'error', D.fmt(arguments)); },
      clear: function () { host.console_write(D.cur, 'clear', ''); }
    });
  })`,
};
