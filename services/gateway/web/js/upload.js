// Uploads: each file is created in the metadata, PUT by the browser straight to the object store
// with the presigned URL and exactly the headers it was signed with (progress from the request's
// upload events), completed, then followed live on /v1/events until its verdict.

import { api, ApiError, words } from './api.js';
import { h, fill, bytes } from './dom.js';
import { onResync, onScanned, statusAfter } from './events.js';

/** Headers the browser sets itself and refuses from scripts. */
const FORBIDDEN = new Set(['content-length', 'host', 'connection']);

const VERDICTS = {
  clean: 'clean',
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
    if (item) item.verdict(event.verdict);
    else if (mine.has(event.file_id)) early.set(event.file_id, event.verdict);
  });
  // The live events broke: each file still waiting is looked at once (not polled); one whose
  // `complete` is in flight looks once when it answers.
  let breaks = 0;
  const unresync = onResync(async () => {
    breaks += 1;
    for (const [id, item] of waiting) {
      try {
        const file = await api('GET', `/v1/files/${id}`);
        if (file.verdict && file.status !== 'scanning') item.verdict(file.verdict);
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
    let xhr = null;
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
      xhr?.abort();
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
      verdict(verdict) {
        waiting.delete(created.id);
        mine.delete(created.id);
        const status = statusAfter(verdict);
        if (status === 'available') finish('Clean: ready to download.', 'okay');
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
        if (answer.upload.method !== 'PUT') {
          throw new ApiError(0, 'multipart', 'Files this large need the coffer command-line client for now.');
        }
        await put(file, answer.upload, (loaded) => {
          bar.value = loaded;
          const pct = file.size ? Math.floor((loaded / file.size) * 100) : 100;
          say(`Uploading ${bytes(loaded)} of ${bytes(file.size)} (${pct}%)`);
        }, (x) => { xhr = x; });
        if (cancelled) return;
        bar.value = file.size || 1;
        say('Finishing…');
        const breaksBefore = breaks;
        const done = await api('POST', `/v1/files/${created.id}/complete`);
        if (cancelled) return;
        created = done;
        cancel.hidden = true;
        landed(created);
        const verdict = early.get(created.id);
        if (verdict) { early.delete(created.id); item.verdict(verdict); return; }
        waiting.set(created.id, item);
        say('Scanning for malware…', 'wait');
        if (breaks !== breaksBefore) {
          const now = await api('GET', `/v1/files/${created.id}`).catch(() => null);
          if (now?.verdict && now.status !== 'scanning' && waiting.has(created.id)) item.verdict(now.verdict);
        }
      } catch (e) {
        if (created) { mine.delete(created.id); early.delete(created.id); }
        if (cancelled) return;
        finish(e instanceof ApiError ? words(e) : e.message, 'error');
        if (created && created.status === 'pending_upload') await discard(created.id);
      }
    })();
  }

  return { element: h('div', null, input, list), add, pick: () => input.click(), clear: () => fill(list) };
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

/** The presigned PUT, with progress; rejects with a sentence when the store refuses. */
function put(file, upload, progress, started) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    started(xhr);
    xhr.open('PUT', upload.url);
    for (const [name, value] of Object.entries(upload.headers ?? {})) {
      if (!FORBIDDEN.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener('progress', (e) => progress(e.loaded));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else if (xhr.status === 403) reject(new Error('The storage refused the upload: its link expired or did not match. Try again.'));
      else reject(new Error(`The storage refused the upload (status ${xhr.status}). Try again.`));
    });
    xhr.addEventListener('error', () => reject(new Error('The upload to the storage failed: the connection broke or the storage cannot be reached. Try again.')));
    xhr.addEventListener('abort', () => resolve());
    xhr.send(file);
  });
}
