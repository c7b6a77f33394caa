/**
 * tshark (Wireshark) as an independent reference in tests: write frames to a
 * pcap, let tshark dissect them, compare. Tests skip when tshark is not
 * installed (Debian/Ubuntu: apt-get install tshark).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pcapFile } from './packet-builder.ts';

export class TsharkError extends Error {
  override readonly name = 'TsharkError';
}

let found: string | null | undefined;

/** Path of tshark, or null when it is not installed. */
export function findTshark(): string | null {
  if (found !== undefined) return found;
  found = null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/local/bin'])) {
    const p = path.join(dir, 'tshark');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      found = p;
      break;
    } catch {
      // not here
    }
  }
  return found;
}

/**
 * One row per frame, one string per field (tshark -T fields; several values of
 * one field joined with ','). `prefs` are tshark -o name:value settings.
 */
export function tsharkFields(
  linkType: number,
  frames: readonly { data: Buffer; tsMs: number; length?: number }[],
  fields: readonly string[],
  prefs: Readonly<Record<string, string>> = {},
): string[][] {
  const bin = findTshark();
  if (bin === null) throw new TsharkError('tshark is not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-tshark-'));
  const file = path.join(dir, 'frames.pcap');
  try {
    fs.writeFileSync(file, pcapFile(linkType, frames));
    const args = ['-n', '-r', file, '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,'];
    for (const [k, v] of Object.entries(prefs)) args.push('-o', `${k}:${v}`);
    for (const f of fields) args.push('-e', f);
    let text: string;
    try {
      text = execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    } catch (err) {
      throw new TsharkError(`tshark failed on ${frames.length} frames`, { cause: err });
    }
    return text.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
