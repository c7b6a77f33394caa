/**
 * Item projection: builds the smallest object that looks the same as the full
 * item to code that only reads the given paths. Missing stays missing, arrays
 * and non-objects are copied whole (so `.length`, methods and type checks
 * behave as on the full item).
 */
import type { FieldPath } from './analyze.ts';

/** A compiled path set: key -> subtree, or `true` for "copy this value whole". */
export type ProjectionTree = Map<string, ProjectionTree | true>;

export function compileProjection(paths: readonly FieldPath[]): ProjectionTree {
  const root: ProjectionTree = new Map();
  for (const path of paths) {
    let node = root;
    for (let i = 0; i < path.length; i++) {
      const key = path[i];
      const existing = node.get(key);
      if (existing === true) break;
      if (i === path.length - 1) {
        node.set(key, true);
        break;
      }
      if (existing === undefined) {
        const child: ProjectionTree = new Map();
        node.set(key, child);
        node = child;
      } else {
        node = existing;
      }
    }
  }
  return root;
}

export function project(value: Record<string, unknown>, tree: ProjectionTree): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, sub] of tree) {
    if (key === '__proto__') continue; // would set the copy's prototype (analyze never asks for it)
    const v = value[key];
    if (v === undefined || !Object.prototype.hasOwnProperty.call(value, key)) continue;
    if (sub === true || v === null || typeof v !== 'object' || Array.isArray(v)) out[key] = v;
    else out[key] = project(v as Record<string, unknown>, sub);
  }
  return out;
}
