/**
 * Prints (or, with --write, rewrites in README.md) the configuration tables
 * generated from the services' env schemas. A test fails when README.md is
 * stale, so the documented defaults are the real ones.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { configTable } from '@wirescript/config';
import { captureConfig } from '@wirescript/capture';
import { configSyncConfig } from '@wirescript/config-sync';
import { hubConfig } from '@wirescript/hub';
import { runnerConfig } from '@wirescript/script-runner';

export const TABLES: Record<string, string> = {
  'script-runner': configTable(runnerConfig).trim(),
  capture: configTable(captureConfig).trim(),
  hub: configTable(hubConfig).trim(),
  'config-sync': configTable(configSyncConfig).trim(),
};

const README = new URL('../README.md', import.meta.url);

/** README.md with every `<!-- config:NAME -->...<!-- /config -->` block regenerated. */
export function renderReadme(text: string): string {
  return text.replace(/(<!-- config:([\w-]+) -->\n)[\s\S]*?(<!-- \/config -->)/g, (_m, open: string, name: string, close: string) => {
    const table = TABLES[name];
    if (table === undefined) throw new Error(`README.md names an unknown config table "${name}"`);
    return `${open}${table}\n${close}`;
  });
}

if (import.meta.main) {
  const text = readFileSync(README, 'utf8');
  if (process.argv.includes('--write')) writeFileSync(README, renderReadme(text));
  else for (const [name, t] of Object.entries(TABLES)) console.log(`## ${name}\n${t}\n`);
}
