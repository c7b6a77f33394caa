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
  var D = { seq: 0, cur: -1, at: -1, hookAt: -1, jobs: {} };
  var HOOKS = cfg.hooks;
  var slots = {};
  var order = [];
  var lists = {};
  var pending = null;
  var pendingErrs = null; // survives an aborted (interrupted) guest loop until the batch completes

  function safeString(v) {
    try { return String(v); } catch (e) { return '(unprintable value)'; }
  }
  function errInfo(e) {
    try {
      if (e !== null && typeof e === 'object' && ('message' in e || e instanceof Error)) {
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
        if (typeof f === 'function') lists[HOOKS[k]].push({ slot: s.id, fn: f, paused: s.paused });
      }
    }
  }

  // Runs a script's top level (the wrapper returns its hooks).
  D.load = function (slot, wrapper) {
    D.seq++; D.cur = slot;
    var hooks;
    try { hooks = wrapper.call(G); } finally { D.cur = -1; }
    slots[slot] = { id: slot, hooks: hooks || {}, paused: false };
    order.push(slot);
    rebuild();
    var names = [];
    for (var k in slots[slot].hooks) if (typeof slots[slot].hooks[k] === 'function') names.push(k);
    return names.join(',');
  };
  D.unload = function (slot) {
    delete slots[slot];
    var next = [];
    for (var i = 0; i < order.length; i++) if (order[i] !== slot) next.push(order[i]);
    order = next;
    for (var t in D.jobs) if (D.jobs[t].slot === slot) delete D.jobs[t];
    rebuild();
  };
  D.setOrder = function (csv) {
    var ids = csv === '' ? [] : csv.split(',');
    var next = [];
    for (var i = 0; i < ids.length; i++) if (slots[+ids[i]]) next.push(+ids[i]);
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
      if (mode === 0 && (x === null || typeof x !== 'object' || x instanceof Array)) {
        if (errs === null) errs = pendingErrs = [];
        errs.push([i, -1, { name: 'TypeError', message: 'item is not a JSON object', stack: '' }]);
        continue;
      }
      for (var j = (i === from ? fromHook : 0); j < n; j++) {
        var e = list[j];
        if (e.paused) continue;
        D.seq++; D.cur = e.slot; D.at = i; D.hookAt = j;
        try {
          if (mode === 2) e.fn.apply(G, x);
          else if (mode === 3) {
            var r = e.fn(x[0]);
            if (r !== null && typeof r === 'object') x[0] = r;
          } else e.fn(x);
        } catch (ex) {
          if (errs === null) errs = pendingErrs = [];
          errs.push([i, e.slot, errInfo(ex)]);
        }
      }
    }
    D.cur = -1; D.at = -1; D.hookAt = -1;
    var out = errs === null ? 0 : JSON.stringify(errs);
    if (mode === 3) out = JSON.stringify({ errs: errs, value: arr[0][0] });
    pending = null;
    pendingErrs = null;
    return out;
  }

  // Entry point for every hook dispatch. json === null resumes the pending batch.
  D.dispatch = function (hook, mode, json, from, fromHook) {
    if (json !== null) {
      pendingErrs = null;
      try { pending = JSON.parse(json); } catch (e) { pending = null; return -1; }
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
    try { j.fn.apply(G, j.args); return 0; }
    catch (ex) { return JSON.stringify(errInfo(ex)); }
    finally { D.cur = prev; }
  };
  D.dropJob = function (tag) { delete D.jobs[tag]; };

  // console.log formatting: strings as is, objects as JSON, errors as "Name: message".
  D.fmt = function (args) {
    var out = [];
    for (var i = 0; i < args.length; i++) {
      var a = args[i], t = typeof a;
      if (t === 'string') out.push(a);
      else if (a === null || (t !== 'object' && t !== 'function')) out.push(String(a));
      else if (t === 'function') out.push('[Function' + (a.name ? ': ' + a.name : '') + ']');
      else if (a instanceof Error) out.push(safeString(a));
      else {
        var s;
        try { s = JSON.stringify(a); } catch (e) { s = safeString(a); }
        out.push(s === undefined ? safeString(a) : s);
      }
    }
    return out.join(' ');
  };
  D.json = function (v, what) {
    var s;
    try { s = JSON.stringify(v); } catch (e) { throw new TypeError(what + ': cannot serialise to JSON: ' + safeString(e && e.message)); }
    return s === undefined ? 'null' : s;
  };
  // Defines a read-only, non-configurable global namespace (helpers can't be clobbered by one script for all).
  D.defineGlobal = function (name, value) {
    if (value !== null && typeof value === 'object') Object.freeze(value);
    Object.defineProperty(G, name, { value: value, writable: false, enumerable: false, configurable: false });
  };
  return D;
})`;
