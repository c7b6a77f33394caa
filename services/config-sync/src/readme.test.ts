import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { configTable } from '@wirescript/config';
import { configSyncConfig } from './config.ts';

const README = new URL('../README.md', import.meta.url);

function render(text: string): string {
  return text.replace(/(<!-- config:config-sync -->\n)[\s\S]*?(<!-- \/config -->)/, (_m, open: string, close: string) => `${open}${configTable(configSyncConfig).trim()}\n${close}`);
}

// `UPDATE_README=1 node --test services/config-sync/src/readme.test.ts` rewrites the table.
test('the configuration table in services/config-sync/README.md matches the env schema', () => {
  const text = readFileSync(README, 'utf8');
  if (process.env.UPDATE_README === '1') writeFileSync(README, render(text));
  assert.equal(readFileSync(README, 'utf8'), render(text), 'stale table: run with UPDATE_README=1');
});
