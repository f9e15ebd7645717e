// The live events (`GET /v1/events`, server-sent): a file's verdict reaches the page the moment
// the scan decides, with no polling. EventSource reconnects by itself when the stream ends.

import { api } from './api.js';

let source = null;
let wanted = false;
let retry = 1000;
let timer = null;
const listeners = new Set();
const resyncs = new Set();

/** How long a stream must stay up before a break counts as over (no reload loop). */
const STABLE_MS = 10000;

function open(afterBreak) {
  const es = new EventSource('/v1/events');
  source = es;
  es.addEventListener('file.scanned', (e) => {
    let event;
    try { event = JSON.parse(e.data); } catch { return; }
    const data = event.data ?? event;
    for (const fn of listeners) fn(data);
  });
  let broke = afterBreak;
  let stable = null;
  es.addEventListener('open', () => {
    // Events sent while the stream was down are not replayed: whoever waits looks once, and
    // the back-off starts over only once the stream has stayed up a while.
    if (broke) {
      broke = false;
      for (const fn of resyncs) fn();
    }
    clearTimeout(stable);
    stable = setTimeout(() => { retry = 1000; }, STABLE_MS);
  });
  es.addEventListener('error', () => {
    broke = true;
    clearTimeout(stable);
    // EventSource retries by itself after a dropped connection; after a refusal (429: too many
    // streams, 401: the session ended) it gives up: open a new one later, slower each time.
    if (es.readyState !== EventSource.CLOSED || source !== es) return;
    source = null;
    if (!wanted) return;
    // A refusal may mean the session ended: asking who we are signs the page out if so.
    api('GET', '/v1/me').catch(() => {});
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (wanted && !source) open(true);
    }, retry);
    retry = Math.min(retry * 2, 30000);
  });
}

export function startEvents() {
  wanted = true;
  if (!source) open(false);
}

export function stopEvents() {
  wanted = false;
  clearTimeout(timer);
  source?.close();
  source = null;
}

/** Calls `fn()` when the stream is back after a break (events may have been missed). */
export function onResync(fn) {
  resyncs.add(fn);
  return () => resyncs.delete(fn);
}

/** Calls `fn({file_id, verdict, …})` for each scanned file; returns the unsubscriber. */
export function onScanned(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** The status a verdict gives a file that is not in the trash (anything but clean quarantines,
 * a re-scan's verdict too, even of a released file). */
export function statusAfter(verdict, status) {
  // The event says where the verdict took the file (`nsfw` depends on the org's policy).
  if (status === 'available' || status === 'quarantined') return status;
  return verdict === 'clean' ? 'available' : 'quarantined';
}
