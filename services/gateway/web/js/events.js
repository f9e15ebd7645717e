// The live events (`GET /v1/events`, server-sent): a file's verdict reaches the page the moment
// the scan decides, with no polling. EventSource reconnects by itself when the stream ends.

let source = null;
let wanted = false;
let retry = 1000;
let timer = null;
const listeners = new Set();
const resyncs = new Set();

function open() {
  source = new EventSource('/v1/events');
  source.addEventListener('file.scanned', (e) => {
    let event;
    try { event = JSON.parse(e.data); } catch { return; }
    const data = event.data ?? event;
    for (const fn of listeners) fn(data);
  });
  let failed = false;
  source.addEventListener('open', () => {
    retry = 1000;
    // Events sent while the stream was down are not replayed: whoever waits looks once.
    if (failed) for (const fn of resyncs) fn();
  });
  source.addEventListener('error', () => {
    failed = true;
    // EventSource retries by itself after a dropped connection; after a refusal (429: too many
    // streams, 401: the session ended) it gives up: open a new one later, slower each time.
    if (source.readyState !== EventSource.CLOSED) return;
    source = null;
    if (!wanted) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (wanted && !source) {
        open();
        source.addEventListener('open', () => { for (const fn of resyncs) fn(); }, { once: true });
      }
    }, retry);
    retry = Math.min(retry * 2, 30000);
  });
}

export function startEvents() {
  wanted = true;
  if (!source) open();
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
export function statusAfter(verdict) {
  return verdict === 'clean' ? 'available' : 'quarantined';
}
