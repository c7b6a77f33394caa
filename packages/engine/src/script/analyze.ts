/**
 * Static analysis of a validated script:
 *  - which hooks it defines (so hooks are never called in scripts without them);
 *  - which fields of `data` its onItemCaptured provably reads, so the engine can
 *    hand the VM a small projection of each item instead of the whole item
 *    (the dominant cost of a hook call is moving and parsing the item).
 *
 * The projection analysis is conservative: any use of `data` it cannot prove
 * harmless (passing it on, storing it, `in`, `for..in`, reassignment, eval,
 * `with`, shadowing, `arguments`) makes the script need the whole item.
 */
import type { Program, Node, Identifier, Function as FnNode } from 'acorn';
import { HOOK_NAMES, isHookName, type HookName } from './hooks.ts';

/** A path of property names into an item, e.g. ['request', 'method']. */
export type FieldPath = readonly string[];

/** The fields of an item a hook needs: a set of paths, or everything. */
export type ItemFields = { kind: 'all' } | { kind: 'paths'; paths: FieldPath[] };

export interface ScriptAnalysis {
  hooks: HookName[];
  /** Fields onItemCaptured reads; `{kind:'paths', paths:[]}` when it reads none or is absent. */
  itemCapturedFields: ItemFields;
}

type AnyNode = Node & Record<string, unknown>;
const ALL: ItemFields = { kind: 'all' };

function isNode(v: unknown): v is AnyNode {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

/** Calls `visit(node, parent)` for every node below `root`, depth first. */
function walk(root: AnyNode, visit: (node: AnyNode, parent: AnyNode | null) => void, parent: AnyNode | null = null): void {
  visit(root, parent);
  for (const key of Object.keys(root)) {
    if (key === 'loc' || key === 'start' || key === 'end' || key === 'type') continue;
    const v = root[key];
    if (Array.isArray(v)) {
      for (const child of v) if (isNode(child)) walk(child, visit, root);
    } else if (isNode(v)) {
      walk(v, visit, root);
    }
  }
}

function isFunctionNode(n: AnyNode): n is AnyNode & FnNode {
  return n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression';
}

/** Names a function declares in its own scope (params, vars, inner function names). */
function declaredNames(fn: AnyNode & FnNode): Set<string> {
  const names = new Set<string>();
  for (const p of fn.params) if (p.type === 'Identifier') names.add(p.name);
  const body = fn.body as unknown as AnyNode;
  const scan = (n: AnyNode): void => {
    if (n.type === 'VariableDeclarator' && (n.id as AnyNode).type === 'Identifier') names.add((n.id as unknown as Identifier).name);
    if (n.type === 'FunctionDeclaration' && n.id) names.add((n.id as unknown as Identifier).name);
    for (const key of Object.keys(n)) {
      if (key === 'loc') continue;
      const v = n[key];
      const children = Array.isArray(v) ? v : [v];
      for (const c of children) {
        if (!isNode(c)) continue;
        if (isFunctionNode(c)) {
          if (c.type === 'FunctionDeclaration' && c.id) names.add(c.id.name);
          continue; // inner function scopes are their own
        }
        scan(c);
      }
    }
  };
  scan(body);
  return names;
}

export function analyzeScript(ast: Program): ScriptAnalysis {
  const root = ast as unknown as AnyNode;
  const hooks = new Set<HookName>();
  /** Function literals that define onItemCaptured; null entry = defined by something else. */
  const itemHookDefs: (AnyNode & FnNode | null)[] = [];
  let usesEvalOrWith = false;

  for (const stmt of ast.body as unknown as AnyNode[]) {
    if (stmt.type === 'FunctionDeclaration' && stmt.id && isHookName((stmt.id as unknown as Identifier).name)) {
      hooks.add((stmt.id as unknown as Identifier).name as HookName);
    } else if (stmt.type === 'VariableDeclaration') {
      for (const d of stmt.declarations as AnyNode[]) {
        const name = (d.id as unknown as Identifier).name;
        if (isHookName(name)) hooks.add(name);
      }
    } else if (stmt.type === 'ExpressionStatement') {
      const e = stmt.expression as AnyNode;
      if (e.type === 'AssignmentExpression' && (e.left as AnyNode).type === 'Identifier' && isHookName((e.left as unknown as Identifier).name)) {
        hooks.add((e.left as unknown as Identifier).name as HookName);
      }
    }
  }

  // Every definition or assignment of onItemCaptured, anywhere in the script.
  walk(root, (n, parent) => {
    if (n.type === 'WithStatement') usesEvalOrWith = true;
    if (n.type === 'Identifier' && (n as unknown as Identifier).name === 'eval' &&
        !(parent?.type === 'MemberExpression' && parent.property === n && !parent.computed) &&
        !(parent?.type === 'Property' && parent.key === n && !parent.computed)) {
      usesEvalOrWith = true;
    }
    if (n.type === 'FunctionDeclaration' && n.id && (n.id as unknown as Identifier).name === 'onItemCaptured') {
      itemHookDefs.push(n as AnyNode & FnNode);
    } else if (n.type === 'VariableDeclarator' && (n.id as unknown as Identifier).name === 'onItemCaptured' && n.init) {
      const init = n.init as AnyNode;
      itemHookDefs.push(init.type === 'FunctionExpression' ? (init as AnyNode & FnNode) : null);
    } else if (n.type === 'AssignmentExpression' && (n.left as AnyNode).type === 'Identifier' &&
               (n.left as unknown as Identifier).name === 'onItemCaptured') {
      const right = n.right as AnyNode;
      itemHookDefs.push(n.operator === '=' && right.type === 'FunctionExpression' ? (right as AnyNode & FnNode) : null);
    }
  });

  let itemCapturedFields: ItemFields = { kind: 'paths', paths: [] };
  if (hooks.has('onItemCaptured')) {
    if (usesEvalOrWith || itemHookDefs.length === 0 || itemHookDefs.includes(null)) {
      itemCapturedFields = ALL;
    } else {
      const paths: FieldPath[] = [];
      for (const fn of itemHookDefs as (AnyNode & FnNode)[]) {
        const r = hookParamPaths(fn);
        if (r === null) { itemCapturedFields = ALL; break; }
        paths.push(...r);
      }
      if (itemCapturedFields.kind === 'paths') itemCapturedFields = { kind: 'paths', paths: normalizePaths(paths) };
    }
  }
  return { hooks: HOOK_NAMES.filter((h) => hooks.has(h)), itemCapturedFields };
}

/** Paths of the first parameter a hook reads, or null when it needs the whole object. */
function hookParamPaths(fn: AnyNode & FnNode): FieldPath[] | null {
  const first = fn.params[0] as unknown as AnyNode | undefined;
  const body = fn.body as unknown as AnyNode;
  let needsAll = false;
  const paths: FieldPath[] = [];
  const param = first && first.type === 'Identifier' ? (first as unknown as Identifier).name : null;
  if (first && !param) return null;
  // A duplicate parameter name or a local re-declaration shadows the param.
  if (param && fn.params.filter((p) => p.type === 'Identifier' && p.name === param).length > 1) return null;

  const parents = new Map<AnyNode, AnyNode | null>();
  walk(body, (n, parent) => {
    parents.set(n, parent);
    if (needsAll) return;
    if (n.type === 'Identifier' && (n as unknown as Identifier).name === 'arguments') { needsAll = true; return; }
    if (param === null) return;
    if (isFunctionNode(n) && declaredNames(n).has(param)) { needsAll = true; return; }
    if (n.type === 'CatchClause' && (n.param as AnyNode | null)?.type === 'Identifier' &&
        (n.param as unknown as Identifier).name === param) { needsAll = true; return; }
    if (n.type === 'VariableDeclarator' && (n.id as unknown as Identifier).name === param) { needsAll = true; return; }
    if (n.type === 'FunctionDeclaration' && n.id && (n.id as unknown as Identifier).name === param) { needsAll = true; return; }
  });
  if (needsAll) return null;
  if (param === null) return [];

  walk(body, (n) => {
    if (needsAll || n.type !== 'Identifier' || (n as unknown as Identifier).name !== param) return;
    const parent = parents.get(n) ?? null;
    // Not a reference: a non-computed property name or an object-literal key.
    if (parent?.type === 'MemberExpression' && parent.property === n && !parent.computed) return;
    if (parent?.type === 'Property' && parent.key === n && !parent.computed) return;
    if (parent?.type === 'LabeledStatement' || parent?.type === 'BreakStatement' || parent?.type === 'ContinueStatement') return;

    const path: string[] = [];
    let top: AnyNode = n;
    let up = parent;
    while (up?.type === 'MemberExpression' && up.object === top) {
      const prop = up.property as AnyNode;
      if (!up.computed) path.push((prop as unknown as Identifier).name);
      else if (prop.type === 'Literal' && (typeof prop.value === 'string' || typeof prop.value === 'number')) path.push(String(prop.value));
      else break; // dynamic key: the object itself is needed whole
      top = up;
      up = parents.get(up) ?? null;
    }
    const topParent = parents.get(top) ?? null;
    if (path.length === 0) {
      if (!harmlessBareUse(n, parent, parents)) needsAll = true;
      return;
    }
    // Reassigning the parameter itself is caught above (path empty); writes below it are fine.
    if (topParent?.type === 'CallExpression' && topParent.callee === top) path.pop(); // method call: receiver whole
    if (path.length === 0 || path.includes('__proto__')) { needsAll = true; return; }
    paths.push(path);
  });
  return needsAll ? null : paths;
}

/** A bare use of the parameter whose result is the same for any non-null object. */
function harmlessBareUse(n: AnyNode, parent: AnyNode | null, parents: Map<AnyNode, AnyNode | null>): boolean {
  if (!parent) return false;
  if (parent.type === 'UnaryExpression' && (parent.operator === '!' || parent.operator === 'typeof')) return true;
  if ((parent.type === 'IfStatement' || parent.type === 'WhileStatement' || parent.type === 'DoWhileStatement' ||
       parent.type === 'ForStatement' || parent.type === 'ConditionalExpression') && parent.test === n) return true;
  if (parent.type === 'BinaryExpression' && ['==', '===', '!=', '!=='].includes(String(parent.operator))) {
    const other = (parent.left === n ? parent.right : parent.left) as AnyNode;
    return (other.type === 'Literal' && other.value === null) ||
      (other.type === 'Identifier' && (other as unknown as Identifier).name === 'undefined');
  }
  if (parent.type === 'LogicalExpression' && parent.left === n) {
    // `data && data.x` in a test position only; as a value it would let `data` flow on.
    const gp = parents.get(parent) ?? null;
    return gp !== null && harmlessBareUse(parent, gp, parents);
  }
  return false;
}

/** Sorts paths and drops any path below another (its subtree is copied whole). */
export function normalizePaths(paths: readonly FieldPath[]): FieldPath[] {
  const sorted = [...paths].sort((a, b) => a.length - b.length);
  const out: FieldPath[] = [];
  for (const p of sorted) {
    if (out.some((q) => q.length <= p.length && q.every((k, i) => p[i] === k))) continue;
    out.push(p);
  }
  return out.sort((a, b) => a.join('.').localeCompare(b.join('.')));
}

/** Union of several scripts' needs: `all` wins. */
export function unionFields(list: readonly ItemFields[]): ItemFields {
  const paths: FieldPath[] = [];
  for (const f of list) {
    if (f.kind === 'all') return ALL;
    paths.push(...f.paths);
  }
  return { kind: 'paths', paths: normalizePaths(paths) };
}
