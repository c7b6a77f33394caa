/** test.pass(data) / test.fail(data): mark an item passed or failed and return it (used in onItemQueried). */
import type { HelperModule } from './types.ts';

export const testHelper: HelperModule = {
  name: 'test',
  guest: `(function (host, D, G, cfg) {
    function mark(name, passed) {
      return function (data) {
        if (data === null || typeof data !== 'object') throw new TypeError('test.' + name + '(data): data must be an object');
        data.passed = passed;
        data.failed = !passed;
        return data;
      };
    }
    D.defineGlobal('test', { pass: mark('pass', true), fail: mark('fail', false) });
  })`,
};
