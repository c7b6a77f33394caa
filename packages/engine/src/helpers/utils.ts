/** utils.nodeName() and utils.json2Yaml(jsonText). */
import { stringify } from 'yaml';
import { expectString, type HelperModule } from './types.ts';

/** Converts JSON text to YAML; throws a TypeError a script can catch on bad JSON. */
export function json2Yaml(text: string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TypeError(`utils.json2Yaml(s): s is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return stringify(value);
}

export const utilsHelper: HelperModule = {
  name: 'utils',
  host: () => ({
    utils_json2Yaml(s) {
      return json2Yaml(expectString(s, 'utils.json2Yaml(s): s'));
    },
  }),
  guest: `(function (host, D, G, cfg) {
    var nodeName = cfg.nodeName;
    D.defineGlobal('utils', {
      nodeName: function () { return nodeName; },
      json2Yaml: function (s) {
        if (typeof s !== 'string') s = D.json(s, 'utils.json2Yaml');
        return host.utils_json2Yaml(s);
      }
    });
  })`,
};
