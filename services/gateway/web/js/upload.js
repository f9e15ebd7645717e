// Uploads: each file is created in the metadata, PUT by the browser straight to the object store
// with the presigned URL and exactly the headers it was signed with (progress from the request's
// upload events) — a large file in parts, a few at a time — completed, then followed live on
// /v1/events until its verdict.

import { api, ApiError, words } from './api.js';
import { h, bytes } from './dom.js';
import { onResync, onScanned, statusAfter } from './events.js';

/** Headers the browser sets itself and refuses from scripts. */
const FORBIDDEN = new Set(['content-length', 'host', 'connection']);

const VERDICTS = {
  clean: 'clean',
  nsfw: 'not safe for work',
  infected: 'malware found',
  suspicious: 'suspicious',
  sensitive: 'sensitive data found',
  failed: 'could not be scanned',
};

/**
 * The upload list of a folder. `add(files)` starts uploads, `pick()` opens the file picker;
 * `landed(file)` is called when a file exists in the folder (after complete).
 */
export function uploader(folderId, landed) {
  const list = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const input = h('input', { type: 'file', multiple: true, hidden: true, 'aria-label': 'Files to upload' });
  input.addEventListener('change', () => { add([...input.files]); input.value = ''; });
  // Verdicts of this list's files that came before their `complete` answered.
  const early = new Map();
  const mine = new Set();
  const waiting = new Map();
  const unsubscribe = onScanned((event) => {
    const item = waiting.get(event.file_id);
    if (item) item.verdict(event.verdict, event.status);
    else if (mine.has(event.file_id)) early.set(event.file_id, [event.verdict, event.status]);
  });
  // The live events broke: each file still waiting is looked at once (not polled); one whose
  // `complete` is in flight looks once when it answers.
  let breaks = 0;
  const unresync = onResync(async () => {
    breaks += 1;
    for (const [id, item] of waiting) {
      try {
        const file = await api('GET', `/v1/files/${id}`);
        if (file.verdict && file.status !== 'scanning') item.verdict(file.verdict, file.status);
      } catch { /* it says "Scanning…" until the next event */ }
    }
  });
  window.addEventListener('hashchange', () => { unsubscribe(); unresync(); }, { once: true });

  function add(files) {
    for (const file of files) start(file);
  }

  function start(file) {
    const name = h('span', { class: 'name' }, file.name);
    const state = h('span', { class: 'state', 'aria-live': 'polite' }, 'Waiting…');
    const bar = h('progress', { max: file.size || 1, value: 0, 'aria-label': `Upload of ${file.name}` });
    const cancel = h('button', { type: 'button', class: 'link' }, 'Cancel');
    const dismiss = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => li.remove() }, 'Dismiss');
    const li = h('li', { 'data-upload': file.name },
      h('div', { class: 'line' }, name, h('span', null, state, ' ', cancel, dismiss)), bar);
    list.append(li);
    const xhrs = new Set();
    let created = null;
    let cancelled = false;
    const say = (text, cls) => { state.textContent = text; state.className = `state ${cls ?? ''}`; };
    const finish = (text, cls) => {
      say(text, cls);
      cancel.hidden = true;
      dismiss.hidden = false;
    };
    cancel.addEventListener('click', async () => {
      cancelled = true;
      for (const x of xhrs) x.abort();
      cancel.hidden = true;
      say('Cancelling…', 'muted');
      bar.remove();
      if (created && !(await discard(created.id))) {
        finish('Cancelled, but the unfinished file could not be removed just now: purge it from the trash, or Coffer removes it by itself later.', 'muted');
        return;
      }
      finish('Cancelled.', 'muted');
    });

    const item = {
      verdict(verdict, reported) {
        waiting.delete(created.id);
        mine.delete(created.id);
        const status = statusAfter(verdict, reported);
        if (status === 'available' && verdict === 'nsfw') finish('Flagged as not safe for work: your organisation lets it be downloaded.', 'muted');
        else if (status === 'available') finish('Clean: ready to download.', 'okay');
        else finish(`Quarantined: ${VERDICTS[verdict] ?? verdict}. It cannot be downloaded or shared.`, 'error');
        landed({ ...created, status, verdict });
      },
    };

    (async () => {
      try {
        say('Starting…');
        const answer = await api('POST', '/v1/files', {
          name: file.name,
          folder_id: folderId || undefined,
          size: file.size,
          content_type: file.type || 'application/octet-stream',
        });
        created = answer.file;
        mine.add(created.id);
        if (cancelled) { await discard(created.id); return; }
        const progress = (loaded) => {
          bar.value = loaded;
          const pct = file.size ? Math.floor((loaded / file.size) * 100) : 100;
          say(`Uploading ${bytes(loaded)} of ${bytes(file.size)} (${pct}%)`);
        };
        let parts;
        if (answer.upload.method === 'multipart') {
          parts = await putParts(file, created.id, answer.upload, progress, (x) => { xhrs.add(x); }, () => cancelled);
        } else {
          await put(file, answer.upload.url, answer.upload.headers, progress, (x) => { xhrs.add(x); });
        }
        if (cancelled) return;
        bar.value = file.size || 1;
        say('Finishing…');
        const breaksBefore = breaks;
        const done = await api('POST', `/v1/files/${created.id}/complete`, parts ? { parts } : undefined);
        if (cancelled) return;
        created = done;
        cancel.hidden = true;
        landed(created);
        const seen = early.get(created.id);
        if (seen) { early.delete(created.id); item.verdict(...seen); return; }
        waiting.set(created.id, item);
        say('Scanning for malware…', 'wait');
        if (breaks !== breaksBefore) {
          const now = await api('GET', `/v1/files/${created.id}`).catch(() => null);
          if (now?.verdict && now.status !== 'scanning' && waiting.has(created.id)) item.verdict(now.verdict, now.status);
        }
      } catch (e) {
        if (created) { mine.delete(created.id); early.delete(created.id); }
        if (cancelled) return;
        finish(e instanceof ApiError ? words(e) : e.message, 'error');
        if (created && created.status === 'pending_upload') await discard(created.id);
      }
    })();
  }

  return { element: h('div', null, input, list), add, pick: () => input.click() };
}

/**
 * Removes a file whose upload did not finish: to the trash, then purged (it never had bytes to
 * keep; its reserved quota comes back). The stale-upload sweep would remove it otherwise.
 */
async function discard(id) {
  try {
    await api('DELETE', `/v1/files/${id}`);
    await api('DELETE', `/v1/files/${id}/purge`);
    return true;
  } catch {
    return false; // the stale-upload sweep removes it
  }
}

/** Parts in flight at once for a file uploaded in parts. */
const PARALLEL = 3;

/**
 * A file in parts: what the store already holds is kept, the rest is PUT a few parts at a time.
 * Part URLs are asked for just before use (a handful at a time: each lives minutes, a slow link
 * takes longer than that for a hundred parts) and asked again when the store refuses an expired
 * one; a part that fails is tried again twice, then every other request in flight is stopped.
 * Resolves with every part's number and etag, in order.
 */
async function putParts(file, id, plan, progress, started, cancelled) {
  const count = plan.part_count;
  const size = plan.part_size;
  const loaded = new Array(count + 1).fill(0);
  const etags = new Array(count + 1).fill(null);
  const held = await api('GET', `/v1/files/${id}/parts`);
  for (const p of held.parts) {
    etags[p.number] = p.etag;
    loaded[p.number] = p.size;
  }
  const report = () => progress(loaded.reduce((a, b) => a + b, 0));
  report();
  const todo = [];
  for (let n = 1; n <= count; n += 1) if (!etags[n]) todo.push(n);
  const urls = new Map();
  let asking = null;
  const urlOf = async (n) => {
    while (!urls.has(n)) {
      if (!asking) {
        const from = todo.indexOf(n);
        const numbers = todo.slice(from, from + 2 * PARALLEL).filter((m) => !urls.has(m));
        asking = api('POST', `/v1/files/${id}/parts`, { numbers })
          .then((r) => { for (const p of r.parts) urls.set(p.number, p); })
          .finally(() => { asking = null; });
      }
      await asking;
    }
    return urls.get(n);
  };
  const mine = new Set();
  let failed = false;
  const track = (xhr) => { mine.add(xhr); started(xhr); };
  const sendPart = async (n) => {
    const start = (n - 1) * size;
    const body = file.slice(start, Math.min(start + size, file.size));
    for (let attempt = 1; ; attempt += 1) {
      const url = await urlOf(n);
      try {
        const xhr = await put(body, url.url, url.headers, (done) => { loaded[n] = done; report(); }, track);
        mine.delete(xhr);
        if (cancelled() || failed) return;
        const etag = (xhr.getResponseHeader('ETag') ?? '').replaceAll('"', '');
        if (!etag) throw new Error('The storage did not say which part it stored (no ETag). Try again.');
        etags[n] = etag;
        return;
      } catch (e) {
        loaded[n] = 0;
        urls.delete(n); // expired, or refused: a fresh URL for the next try
        if (attempt >= 3 || cancelled() || failed) throw e;
      }
    }
  };
  let next = 0;
  const worker = async () => {
    while (next < todo.length && !cancelled() && !failed) {
      const n = todo[next];
      next += 1;
      try {
        await sendPart(n);
      } catch (e) {
        if (!failed) {
          failed = true;
          for (const x of mine) x.abort();
        }
        throw e;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(PARALLEL, todo.length) }, worker));
  const refused = results.find((r) => r.status === 'rejected');
  if (refused) throw refused.reason;
  return etags.slice(1).map((etag, i) => ({ number: i + 1, etag }));
}

/** One presigned PUT of `body`, with progress; resolves with the request, rejects with a
 * sentence when the store refuses. */
function put(body, url, headers, progress, started) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    started(xhr);
    xhr.open('PUT', url);
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (!FORBIDDEN.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener('progress', (e) => progress(e.loaded));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
      else if (xhr.status === 403) reject(new Error('The storage refused the upload: its link expired or did not match. Try again.'));
      else reject(new Error(`The storage refused the upload (status ${xhr.status}). Try again.`));
    });
    xhr.addEventListener('error', () => reject(new Error('The upload to the storage failed: the connection broke or the storage cannot be reached. Try again.')));
    xhr.addEventListener('abort', () => resolve(xhr));
    xhr.send(body);
  });
}
