// The live events (`GET /v1/events`, server-sent): a file's verdict reaches the page the moment
// the scan decides, with no polling. EventSource reconnects by itself when the stream ends.

let source = null;
const listeners = new Set();

export function startEvents() {
  if (source) return;
  source = new EventSource('/v1/events');
  source.addEventListener('file.scanned', (e) => {
    let event;
    try { event = JSON.parse(e.data); } catch { return; }
    const data = event.data ?? event;
    for (const fn of listeners) fn(data);
  });
}

export function stopEvents() {
  source?.close();
  source = null;
}

/** Calls `fn({file_id, verdict, …})` for each scanned file; returns the unsubscriber. */
export function onScanned(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Whether a verdict makes the file quarantined (anything but clean). */
export function statusAfter(verdict) {
  return verdict === 'clean' ? 'available' : 'quarantined';
}
