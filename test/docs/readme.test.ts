/** The README stays true: its configuration tables are the ones the code generates, and its commands exist. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderReadme } from '../../scripts/config-docs.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };

test('README configuration tables match the env schemas (run: node scripts/config-docs.ts --write)', () => {
  assert.match(readme, /<!-- config:script-runner -->/);
  assert.equal(renderReadme(readme), readme);
});

test('the README names the two commands and .ci/run runs exactly the test command', () => {
  assert.match(readme, /npm start/);
  assert.match(readme, /npm test/);
  assert.ok(pkg.scripts.start && pkg.scripts.test);
  const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
  assert.match(ci, /^npm test$/m);
});
