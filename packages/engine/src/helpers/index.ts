/** The built-in helper modules, in installation order. */
import { consoleHelper } from './console.ts';
import { envHelper } from './env.ts';
import { hubHelper } from './hub.ts';
import { jobsHelper } from './jobs.ts';
import { testHelper } from './test.ts';
import { utilsHelper } from './utils.ts';
import { wrapperHelper } from './wrapper.ts';
import type { HelperModule } from './types.ts';

export const BUILTIN_HELPERS: readonly HelperModule[] = [
  consoleHelper,
  envHelper,
  utilsHelper,
  hubHelper,
  jobsHelper,
  testHelper,
  wrapperHelper,
];

export type { HelperModule, HelperHost, HostFunction, HostValue, JobsFacade } from './types.ts';
export { expectString } from './types.ts';
export { buildHar } from './har.ts';
export { json2Yaml } from './utils.ts';
