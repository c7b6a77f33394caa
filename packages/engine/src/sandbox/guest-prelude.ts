/**
 * Guest side of the engine: JavaScript evaluated once inside each VM. It owns
 * the hook lists and the batch dispatch loops, so that one host->guest call
 * runs a whole batch of hook calls (a host<->guest crossing costs far more than
 * an interpreted hook call). It is evaluated as a function expression and
 * called with (global, config); the object it returns (`D`) never becomes
 * reachable from scripts.
 *
 * D.seq is bumped at the start of every script call; the host's interrupt
 * handler reads it to enforce the per-call time budget. D.cur / D.at / D.hookAt
 * tell the host which call was running when an uncatchable interrupt aborted a
 * batch, so it can report it and resume the batch after it.
 */
export const GUEST_PRELUDE = String.raw`(function (G, cfg) {
  // The built-ins this code (and the helpers, through D) uses, captured before any script runs:
  // scripts share these globals and prototypes, and one that replaces JSON.parse or
  // Function.prototype.call must not break dispatch, helpers or loading for the others.
  var apply = Reflect.apply, parse = JSON.parse, stringify = JSON.stringify, Str = String, Err = Error;
  var isArray = Array.isArray, split = String.prototype.split, hasOwnProp = Object.prototype.hasOwnProperty;
  var ERRORS = { Error: Error, TypeError: TypeError, RangeError: RangeError, SyntaxError: SyntaxError, ReferenceError: ReferenceError };
  function push(a, v) { a[a.length] = v; }
  function hasOwn(o, k) { return apply(hasOwnProp, o, [k]); }
  function join(a, sep) { var s = ''; for (var i = 0; i < a.length; i++) s += (i > 0 ? sep : '') + a[i]; return s; }

  var D = { seq: 0, cur: -1, at: -1, hookAt: -1, jobs: {} };
  D.apply = apply; D.parse = parse; D.stringify = stringify; D.isArray = isArray; D.hasOwn = hasOwn; D.push = push;
  // Errors of host helper functions become real guest errors (e instanceof TypeError holds).
  D.mkError = function (name, message) { return new (hasOwn(ERRORS, name) ? ERRORS[name] : Err)(message); };
  var HOOKS = cfg.hooks;
  var slots = {};
  var order = [];
  var lists = {};
  var pending = null;
  var pendingErrs = null; // survives an aborted (interrupted) guest loop until the batch completes

  function safeString(v) {
    try { return Str(v); } catch (e) { return '(unprintable value)'; }
  }
  function errInfo(e) {
    try {
      if (e !== null && typeof e === 'object' && ('message' in e || e instanceof Err)) {
        return { name: safeString(e.name || 'Error'), message: safeString(e.message), stack: safeString(e.stack || '') };
      }
    } catch (x) { /* a hostile error object: fall through */ }
    return { name: 'Error', message: 'uncaught ' + safeString(e), stack: '' };
  }
  D.errInfo = errInfo;

  function rebuild() {
    lists = {};
    for (var h = 0; h < HOOKS.length; h++) lists[HOOKS[h]] = [];
    for (var i = 0; i < order.length; i++) {
      var s = slots[order[i]];
      for (var k = 0; k < HOOKS.length; k++) {
        var f = s.hooks[HOOKS[k]];
        if (typeof f === 'function') push(lists[HOOKS[k]], { slot: s.id, fn: f, paused: s.paused });
      }
    }
  }

  // Runs a script's top level (the wrapper returns its hooks).
  D.load = function (slot, wrapper) {
    D.seq++; D.cur = slot;
    var hooks;
    try { hooks = apply(wrapper, G, []); } finally { D.cur = -1; }
    slots[slot] = { id: slot, hooks: hooks || {}, paused: false };
    push(order, slot);
    rebuild();
    var names = [];
    for (var k in slots[slot].hooks) if (typeof slots[slot].hooks[k] === 'function') push(names, k);
    return join(names, ',');
  };
  D.unload = function (slot) {
    delete slots[slot];
    var next = [];
    for (var i = 0; i < order.length; i++) if (order[i] !== slot) push(next, order[i]);
    order = next;
    for (var t in D.jobs) if (D.jobs[t].slot === slot) delete D.jobs[t];
    rebuild();
  };
  D.setOrder = function (csv) {
    var ids = csv === '' ? [] : apply(split, csv, [',']);
    var next = [];
    for (var i = 0; i < ids.length; i++) if (slots[+ids[i]]) push(next, +ids[i]);
    order = next;
    rebuild();
  };
  D.setPaused = function (slot, paused) {
    if (slots[slot]) { slots[slot].paused = paused; rebuild(); }
  };

  function packetInfo(p) {
    return { timestamp: p[0], captureLength: p[1], length: p[2], truncated: p[3] === 1, fragmented: p[4] === 1 };
  }

  // mode 0: items (one object argument), 1: packets, 2: argument lists, 3: onItemQueried chain.
  function run(hook, mode, from, fromHook) {
    var list = lists[hook], n = list.length, arr = pending, errs = pendingErrs;
    for (var i = from; i < arr.length; i++) {
      var x = arr[i];
      for (var j = (i === from ? fromHook : 0); j < n; j++) {
        var e = list[j];
        if (e.paused) continue;
        // Called as plain functions: 'this' in a hook is the global object, never the list entry.
        var fn = e.fn;
        D.seq++; D.cur = e.slot; D.at = i; D.hookAt = j;
        try {
          if (mode === 2) apply(fn, G, x);
          else if (mode === 3) {
            var r = fn(x[0]);
            if (r !== null && typeof r === 'object' && !isArray(r)) x[0] = r;
          } else fn(x);
        } catch (ex) {
          if (errs === null) errs = pendingErrs = [];
          push(errs, [i, e.slot, errInfo(ex)]);
        }
      }
    }
    D.cur = -1; D.at = -1; D.hookAt = -1;
    var out = errs === null ? 0 : stringify(errs);
    if (mode === 3) out = stringify({ errs: errs, value: arr[0][0] });
    pending = null;
    pendingErrs = null;
    return out;
  }

  // Entry point for every hook dispatch. json === null resumes the pending batch.
  // Returns -1 when the batch is not an array of 'count' entries (items: of 'count' objects):
  // the host then checks its items one by one.
  D.dispatch = function (hook, mode, json, from, fromHook, count) {
    if (json !== null) {
      pendingErrs = null;
      try { pending = parse(json); } catch (e) { pending = null; return -1; }
      if (!isArray(pending) || (count >= 0 && pending.length !== count)) { pending = null; return -1; }
      if (mode === 0) {
        for (var k = 0; k < pending.length; k++) {
          var it = pending[k];
          if (it === null || typeof it !== 'object' || isArray(it)) { pending = null; return -1; }
        }
      }
      if (mode === 1) for (var i = 0; i < pending.length; i++) pending[i] = packetInfo(pending[i]);
    }
    if (pending === null) return 0;
    return run(hook, mode, from, fromHook);
  };
  D.hasHook = function (hook) { return lists[hook].length; };

  D.runJob = function (tag) {
    var j = D.jobs[tag];
    if (!j) return -1;
    var prev = D.cur;
    D.seq++; D.cur = j.slot;
    try { apply(j.fn, G, j.args); return 0; }
    catch (ex) { return stringify(errInfo(ex)); }
    finally { D.cur = prev; }
  };
  D.dropJob = function (tag) { delete D.jobs[tag]; };

  // console.log formatting: strings as is, objects as JSON, errors as "Name: message".
  D.fmt = function (args) {
    var out = [];
    for (var i = 0; i < args.length; i++) {
      var a = args[i], t = typeof a;
      if (t === 'string') push(out, a);
      else if (a === null || (t !== 'object' && t !== 'function')) push(out, Str(a));
      else if (t === 'function') push(out, '[Function' + (a.name ? ': ' + a.name : '') + ']');
      else if (a instanceof Err) push(out, safeString(a));
      else {
        var s;
        try { s = stringify(a); } catch (e) { s = safeString(a); }
        push(out, s === undefined ? safeString(a) : s);
      }
    }
    return join(out, ' ');
  };
  D.json = function (v, what) {
    var s;
    try { s = stringify(v); } catch (e) { throw new ERRORS.TypeError(what + ': cannot serialise to JSON: ' + safeString(e && e.message)); }
    return s === undefined ? 'null' : s;
  };
  // Defines a read-only, non-configurable global namespace (helpers can't be clobbered by one script for all).
  // An accessor, not a data property: QuickJS lets Object.defineProperty replace a non-writable,
  // non-configurable data property of the global object, but not a non-configurable accessor.
  D.defineGlobal = function (name, value) {
    if (value !== null && typeof value === 'object') Object.freeze(value);
    Object.defineProperty(G, name, { get: function () { return value; }, enumerable: false, configurable: false });
  };
  return D;
})`;
