/** env.*: the script environment (from the SCRIPTING_ENV secret), read-only. */
import type { HelperModule } from './types.ts';

export const envHelper: HelperModule = {
  name: 'env',
  guest: `(function (host, D, G, cfg) {
    var env = {};
    for (var k in cfg.env) if (Object.prototype.hasOwnProperty.call(cfg.env, k)) env[k] = String(cfg.env[k]);
    D.defineGlobal('env', env);
  })`,
};
