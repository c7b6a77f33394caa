/** wrapper.joinMaps(a, b) (guest side, pure) and wrapper.buildHAR(items) (host side). */
import { buildHar } from './har.ts';
import { expectString, type HelperModule } from './types.ts';

export const wrapperHelper: HelperModule = {
  name: 'wrapper',
  host: () => ({
    wrapper_buildHAR(json) {
      return JSON.stringify(buildHar(JSON.parse(expectString(json, 'wrapper.buildHAR(items)'))));
    },
  }),
  // joinMaps merges without mutating: numbers are summed, nested maps joined,
  // arrays concatenated, anything else is taken from b (a when b lacks it).
  // That makes consolidating per-worker counters on the hub a one-liner.
  guest: `(function (host, D, G, cfg) {
    // Built-ins through D: a script replacing Array.prototype.concat must not change joinMaps for all.
    function isMap(v) { return v !== null && typeof v === 'object' && !D.isArray(v); }
    function concat(x, y) {
      var c = [], i;
      for (i = 0; i < x.length; i++) c[c.length] = x[i];
      for (i = 0; i < y.length; i++) c[c.length] = y[i];
      return c;
    }
    function join(a, b) {
      var out = {}, k;
      for (k in a) if (D.hasOwn(a, k)) out[k] = a[k];
      for (k in b) {
        if (!D.hasOwn(b, k)) continue;
        var x = out[k], y = b[k];
        if (!D.hasOwn(out, k) || x === undefined) out[k] = y;
        else if (typeof x === 'number' && typeof y === 'number') out[k] = x + y;
        else if (isMap(x) && isMap(y)) out[k] = join(x, y);
        else if (D.isArray(x) && D.isArray(y)) out[k] = concat(x, y);
        else if (y !== undefined) out[k] = y;
      }
      return out;
    }
    D.defineGlobal('wrapper', {
      joinMaps: function (a, b) {
        if (a === undefined || a === null) a = {};
        if (b === undefined || b === null) b = {};
        if (!isMap(a) || !isMap(b)) throw new TypeError('wrapper.joinMaps(a, b): a and b must be objects');
        return join(a, b);
      },
      buildHAR: function (items) {
        if (!D.isArray(items)) throw new TypeError('wrapper.buildHAR(items): items must be an array');
        return D.parse(host.wrapper_buildHAR(D.json(items, 'wrapper.buildHAR')));
      }
    });
  })`,
};
