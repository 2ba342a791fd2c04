namespace CrmEngine.Rules.Scripting;

/// <summary>
/// The JavaScript run once on every new engine, before any user script: the helper library
/// (<c>dates</c>, <c>money</c>, <c>strings</c>, <c>log</c>), then every reachable built-in and
/// the global object are frozen, so no script can leave anything behind for the next run
/// (prototype tampering, new globals) and no two customers' runs can see each other.
/// It returns the tracer used by dry runs (a Proxy that records every field read).
/// </summary>
internal static class Sandbox
{
    public const string Setup = """
(function (g, hostNow, hostLog, hostRead) {
  'use strict';
  const DAY = 86400000;
  function toDate(v) {
    if (v === null || v === undefined) return null;
    if (v instanceof Date) return v;
    if (typeof v === 'string' || typeof v === 'number') { const d = new Date(v); return isNaN(d.getTime()) ? null : d; }
    throw new TypeError('not a date: ' + String(v));
  }
  function num(v) { return typeof v === 'number' ? v : Number(v); }
  function pick(list, fn) { return (list || []).map(x => fn ? fn(x) : x).map(num).filter(x => !isNaN(x)); }
  const dates = {
    now() { return new Date(hostNow()); },
    today() { const n = hostNow(); return new Date(n - (n % DAY)); },
    parse(v) { return toDate(v); },
    daysBetween(a, b) { a = toDate(a); b = toDate(b); return a && b ? Math.floor((b.getTime() - a.getTime()) / DAY) : null; },
    daysSince(d) { d = toDate(d); return d ? Math.floor((hostNow() - d.getTime()) / DAY) : null; },
    daysAgo(n) { return new Date(hostNow() - num(n) * DAY); },
    addDays(d, n) { d = toDate(d); return d ? new Date(d.getTime() + num(n) * DAY) : null; },
    isBefore(a, b) { a = toDate(a); b = toDate(b); return !!(a && b) && a.getTime() < b.getTime(); },
    isAfter(a, b) { a = toDate(a); b = toDate(b); return !!(a && b) && a.getTime() > b.getTime(); },
    withinDays(d, n) { const s = dates.daysSince(d); return s !== null && s <= num(n); },
    olderThanDays(d, n) { const s = dates.daysSince(d); return s === null || s > num(n); },
    year(d) { d = toDate(d); return d ? d.getUTCFullYear() : null; },
    month(d) { d = toDate(d); return d ? d.getUTCMonth() + 1 : null; },
    format(d) { d = toDate(d); return d ? d.toISOString().substring(0, 10) : ''; },
  };
  const money = {
    round(x, digits) { const f = Math.pow(10, digits === undefined ? 2 : digits); return Math.round(num(x) * f) / f; },
    sum(list, fn) { return money.round(pick(list, fn).reduce((a, b) => a + b, 0), 6); },
    avg(list, fn) { const v = pick(list, fn); return v.length ? money.round(v.reduce((a, b) => a + b, 0) / v.length, 6) : 0; },
    percent(part, whole) { return num(whole) ? money.round(100 * num(part) / num(whole), 2) : 0; },
    between(x, low, high) { x = num(x); return x >= num(low) && x <= num(high); },
    format(x, currency) { return num(x).toFixed(2) + (currency ? ' ' + currency : ''); },
  };
  function text(s) { return s === null || s === undefined ? '' : String(s); }
  const strings = {
    lower(s) { return text(s).toLowerCase(); },
    upper(s) { return text(s).toUpperCase(); },
    trim(s) { return text(s).trim(); },
    isBlank(s) { return text(s).trim().length === 0; },
    equals(a, b) { return text(a).toLowerCase() === text(b).toLowerCase(); },
    contains(s, part) { return text(s).toLowerCase().indexOf(text(part).toLowerCase()) >= 0; },
    startsWith(s, part) { return text(s).toLowerCase().startsWith(text(part).toLowerCase()); },
    endsWith(s, part) { return text(s).toLowerCase().endsWith(text(part).toLowerCase()); },
    left(s, n) { return text(s).substring(0, num(n)); },
    words(s) { return text(s).split(/\s+/).filter(w => w.length > 0); },
    oneOf(s, list) { const v = text(s).toLowerCase(); return (list || []).some(x => text(x).toLowerCase() === v); },
  };
  function show(v) {
    if (typeof v === 'string') return v;
    if (v instanceof Date) return v.toISOString();
    try { const j = JSON.stringify(v); return j === undefined ? String(v) : j; } catch (e) { return String(v); }
  }
  function log() {
    const parts = [];
    for (let i = 0; i < arguments.length; i++) parts.push(show(arguments[i]));
    let line = parts.join(' ');
    if (line.length > 2000) line = line.substring(0, 2000) + '…';
    hostLog(line);
  }
  // Dry runs: a Proxy over the (plain) input that reports every leaf read with its path.
  function trace(target, path) {
    return new Proxy(target, {
      get(t, key, receiver) {
        const v = Reflect.get(t, key, t);
        if (typeof key !== 'string') return v;
        const p = path + '.' + key;
        if (v !== null && typeof v === 'object' && !(v instanceof Date) && !Array.isArray(v)) return trace(v, p);
        if (typeof v !== 'function') hostRead(p, v);
        return v;
      },
      has(t, key) { const r = Reflect.has(t, key); if (typeof key === 'string') hostRead(path + '.' + key + '?', r); return r; },
    });
  }
  // Built-ins that make one huge string in a single step are capped before the budget can see it.
  const MAX_STRING = 16777216;
  function tooLong(what) { return new RangeError('Invalid string length: ' + what + ' would exceed ' + MAX_STRING + ' characters'); }
  function replace(proto, name, fn) { Object.defineProperty(proto, name, { value: fn, writable: true, enumerable: false, configurable: true }); }
  const repeat = String.prototype.repeat, padStart = String.prototype.padStart, padEnd = String.prototype.padEnd, join = Array.prototype.join;
  replace(String.prototype, 'repeat', function repeat_(n) { const s = String(this); if (s.length * Number(n) > MAX_STRING) throw tooLong('repeat'); return repeat.call(s, n); });
  replace(String.prototype, 'padStart', function padStart_(n, f) { if (Number(n) > MAX_STRING) throw tooLong('padStart'); return padStart.call(this, n, f); });
  replace(String.prototype, 'padEnd', function padEnd_(n, f) { if (Number(n) > MAX_STRING) throw tooLong('padEnd'); return padEnd.call(this, n, f); });
  replace(Array.prototype, 'join', function join_(sep) {
    const len = this.length >>> 0;
    const sepLen = sep === undefined ? 1 : String(sep).length;
    let total = 0;
    for (let i = 0; i < len; i++) {
      const v = this[i];
      total += sepLen + (typeof v === 'string' ? v.length : 24);
      if (total > MAX_STRING) throw tooLong('join');
    }
    return join.call(this, sep);
  });
  // Date.now() answers the run's evaluation time (as dates.now() does), so a rebuild and an incremental
  // update of the same data decide the same way.
  replace(Date, 'now', function now() { return hostNow(); });
  function define(name, value) { Object.defineProperty(g, name, { value: value, writable: false, enumerable: false, configurable: false }); }
  define('dates', dates);
  define('money', money);
  define('strings', strings);
  define('log', log);
  // Nothing that compiles strings, and nothing that shares memory between runs.
  for (const name of ['eval', 'SharedArrayBuffer', 'Atomics', 'WeakRef', 'FinalizationRegistry', 'ShadowRealm']) {
    if (Object.prototype.hasOwnProperty.call(g, name)) delete g[name];
  }
  const seen = new Set();
  function freeze(o) {
    if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) return;
    seen.add(o);
    Object.freeze(o);
    for (const k of Reflect.ownKeys(o)) {
      const d = Object.getOwnPropertyDescriptor(o, k);
      if (!d) continue;
      if ('value' in d) freeze(d.value); else { freeze(d.get); freeze(d.set); }
    }
    freeze(Object.getPrototypeOf(o));
  }
  for (const k of Reflect.ownKeys(g)) {
    const d = Object.getOwnPropertyDescriptor(g, k);
    if (d && 'value' in d) freeze(d.value);
  }
  freeze(function* () {});
  freeze(async function () {});
  freeze(async function* () {});
  freeze([][Symbol.iterator]());
  freeze(''[Symbol.iterator]());
  freeze(new Map().entries());
  freeze(new Set().values());
  freeze(/x/[Symbol.matchAll]('x'));
  freeze((function* () {})());
  freeze(trace);
  Object.freeze(g);
  return trace;
})
""";
}
