// Files: a folder's contents with breadcrumbs, sorting and paging; creating, renaming, moving and
// trashing; downloads; the trash with restore and purge.

import { api, query, words } from './api.js';
import { h, fill, say, bytes, when, dialog, confirmAction, fields } from './dom.js';
import { onResync, onScanned, statusAfter } from './events.js';
import { isAdmin } from './session.js';
import { uploader } from './upload.js';
import { shareDialog } from './shares.js';

const PAGE = 100;

/** A folder's icon: decoration, not part of its name. */
const folderIcon = () => h('span', { class: 'icon', 'aria-hidden': 'true' }, '📁');

const VERDICT_WORDS = {
  clean: 'Clean',
  nsfw: 'Not safe for work',
  infected: 'Malware found',
  suspicious: 'Suspicious',
  sensitive: 'Sensitive data',
  failed: 'Could not be scanned',
};

/** The badge of a file's state, in words. */
export function statusBadge(file) {
  switch (file.status) {
    case 'available':
      // Downloadable with this verdict: flagged under the organisation's policy, or released by
      // an admin after being held (the file does not say which).
      if (file.verdict === 'nsfw') {
        return h('span', { class: 'badge wait', title: 'The image classifier found this not safe for work; it can be downloaded' }, 'Flagged · Not safe for work');
      }
      return file.verdict && file.verdict !== 'clean'
        ? h('span', { class: 'badge bad', title: 'Released by an admin despite its verdict' }, `Released · ${VERDICT_WORDS[file.verdict] ?? file.verdict}`)
        : h('span', { class: 'badge clean' }, 'Clean');
    case 'quarantined':
      return h('span', { class: 'badge bad' }, `Quarantined · ${VERDICT_WORDS[file.verdict] ?? file.verdict ?? 'unsafe'}`);
    case 'scanning':
      return h('span', { class: 'badge wait' }, 'Scanning…');
    case 'pending_upload':
      return h('span', { class: 'badge wait' }, 'Upload not finished');
    case 'trashed':
      return h('span', { class: 'badge' }, 'In the trash');
    default:
      return h('span', { class: 'badge' }, file.status);
  }
}

/** Starts a download: the presigned GET, which the store answers as an attachment. */
export async function download(file) {
  try {
    const grant = await api('GET', `/v1/files/${file.id}/download`);
    const a = h('a', { href: grant.url, rel: 'noopener noreferrer', hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    say(`Downloading ${file.name}.`);
  } catch (e) {
    say(words(e));
  }
}

function sortBy(items, key, dir) {
  const sign = dir === 'asc' ? 1 : -1;
  const value = {
    name: (x) => x.name.toLocaleLowerCase(),
    size: (x) => x.size ?? -1,
    date: (x) => x.updated_at ?? x.created_at ?? '',
  }[key];
  return [...items].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va < vb) return -sign;
    if (va > vb) return sign;
    return 0;
  });
}

/** Asks for a name; resolves with it, or undefined. */
function askName(title, label, initial = '') {
  return dialog(title, (done) => {
    const form = h('form', {
      onsubmit: (e) => { e.preventDefault(); done(fields(form).name.trim()); },
    },
    h('label', { for: 'name-field' }, label),
    h('input', { id: 'name-field', name: 'name', required: true, maxlength: 255, value: initial, autocomplete: 'off' }),
    h('div', { class: 'actions' },
      h('button', { class: 'primary', type: 'submit' }, 'Save'),
      h('button', { type: 'button', onclick: () => done() }, 'Cancel')));
    queueMicrotask(() => { const i = form.querySelector('input'); i.focus(); i.select(); });
    return form;
  });
}

/** Lets the user pick a folder; resolves with its id ('' for the top level), or undefined. */
function pickFolder(title, excluded) {
  return dialog(title, (done) => {
    const crumbs = h('ol', { class: 'crumbs', 'aria-label': 'Location' });
    const list = h('ul', { class: 'picker', 'aria-label': 'Folders' });
    const here = h('button', { class: 'primary', type: 'button' }, 'Move here');
    let current = 'root';
    const show = async (id) => {
      current = id;
      fill(list, h('li', { class: 'muted' }, 'Loading…'));
      try {
        const path = id === 'root' ? [] : (await api('GET', `/v1/folders/${id}`)).path;
        fill(crumbs,
          h('li', null, h('button', { class: 'link', type: 'button', onclick: () => show('root') }, 'All files')),
          path.map((p) => h('li', null, h('button', { class: 'link', type: 'button', onclick: () => show(p.id) }, p.name))));
        const folders = [];
        let cursor = '';
        do {
          const page = await api('GET', `/v1/folders/${id}/children${query({ limit: PAGE, cursor })}`);
          folders.push(...page.folders);
          cursor = page.next_cursor;
        } while (cursor && folders.length < 1000);
        const shown = folders.filter((f) => f.id !== excluded);
        fill(list, shown.length
          ? shown.map((f) => h('li', null, h('button', { type: 'button', onclick: () => show(f.id) }, folderIcon(), f.name)))
          : h('li', { class: 'muted' }, 'No folders here.'));
        here.disabled = id === excluded;
      } catch (e) {
        fill(list, h('li', { class: 'error' }, words(e)));
      }
    };
    here.addEventListener('click', () => done(current === 'root' ? '' : current));
    show('root');
    return [crumbs, list, h('div', { class: 'actions' }, here, h('button', { type: 'button', onclick: () => done() }, 'Cancel'))];
  });
}

export async function filesScreen(main, [folderId = 'root']) {
  const state = { folders: [], files: [], cursor: null, sort: 'name', dir: 'asc', loading: true };
  const title = h('h1', null, 'Files');
  const crumbs = h('ol', { class: 'crumbs' });
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true, onclick: () => load() }, 'Load more');
  const error = h('p', { class: 'error', role: 'alert' });
  const parentId = folderId === 'root' ? '' : folderId;

  const head = (key, text, cls) => {
    const active = state.sort === key;
    return h('th', { class: cls, 'aria-sort': active ? (state.dir === 'asc' ? 'ascending' : 'descending') : 'none' },
      h('button', {
        type: 'button',
        onclick: () => {
          state.dir = active && state.dir === 'asc' ? 'desc' : 'asc';
          state.sort = key;
          draw();
        },
      }, text, active ? h('span', { 'aria-hidden': 'true' }, state.dir === 'asc' ? ' ▲' : ' ▼') : null));
  };
  const thead = h('thead');
  const table = h('table', { 'aria-label': 'Folder contents' }, thead, body);

  const act = (label, fn, cls, name) => h('button', { type: 'button', class: cls ?? 'link', onclick: fn, 'aria-label': name ? `${label} ${name}` : null }, label);

  const rename = async (item, kind) => {
    const name = await askName(`Rename ${kind}`, 'New name', item.name);
    if (!name || name === item.name) return;
    try {
      const path = kind === 'folder' ? `/v1/folders/${item.id}` : `/v1/files/${item.id}`;
      Object.assign(item, await api('PATCH', path, { name }));
      say(`Renamed to ${name}.`);
      draw();
    } catch (e) { say(words(e)); }
  };
  const move = async (item, kind) => {
    const target = await pickFolder(`Move “${item.name}” to…`, kind === 'folder' ? item.id : null);
    if (target === undefined) return;
    try {
      if (kind === 'folder') await api('PATCH', `/v1/folders/${item.id}`, { parent_id: target });
      else await api('PATCH', `/v1/files/${item.id}`, { folder_id: target });
      say(`Moved ${item.name}.`);
      reload();
    } catch (e) { say(words(e)); }
  };
  const trash = async (item, kind) => {
    try {
      await api('DELETE', kind === 'folder' ? `/v1/folders/${item.id}` : `/v1/files/${item.id}`);
      say(`${item.name} is in the trash.`);
      reload();
    } catch (e) { say(words(e)); }
  };
  const release = async (file) => {
    const ok = await confirmAction('Release this file?',
      `“${file.name}” was quarantined: ${VERDICT_WORDS[file.verdict] ?? file.verdict}. Releasing it lets everyone in your organisation download and share it. The verdict stays on record and the release is audited.`,
      'Release');
    if (!ok) return;
    try {
      Object.assign(file, await api('POST', `/v1/files/${file.id}/release`));
      say(`${file.name} was released.`);
      draw();
    } catch (e) { say(words(e)); }
  };

  const fileRow = (f) => {
    const ok = f.status === 'available';
    return h('tr', { 'data-file-id': f.id },
      h('td', null, h('span', { class: 'name' }, f.name)),
      h('td', { class: 'num' }, bytes(f.size)),
      h('td', { class: 'num' }, when(f.updated_at)),
      h('td', { class: 'state' }, statusBadge(f)),
      h('td', { class: 'num' }, h('div', { class: 'actions-cell' },
        ok ? act('Download', () => download(f), null, f.name) : null,
        ok ? act('Share', () => shareDialog(f), null, f.name) : null,
        f.status === 'quarantined' && isAdmin() ? act('Release', () => release(f), 'link danger', f.name) : null,
        act('Rename', () => rename(f, 'file'), null, f.name),
        act('Move', () => move(f, 'file'), null, f.name),
        act('Trash', () => trash(f, 'file'), null, f.name))));
  };
  const folderRow = (d) => h('tr', { 'data-folder-id': d.id },
    h('td', null, folderIcon(), h('a', { href: `#/files/${d.id}` }, d.name)),
    h('td', { class: 'num muted' }, '—'),
    h('td', { class: 'num' }, when(d.created_at)),
    h('td', null, h('span', { class: 'muted' }, 'Folder')),
    h('td', { class: 'num' }, h('div', { class: 'actions-cell' },
      act('Rename', () => rename(d, 'folder'), null, d.name),
      act('Move', () => move(d, 'folder'), null, d.name),
      act('Trash', () => trash(d, 'folder'), null, d.name))));

  function draw() {
    fill(thead, h('tr', null, head('name', 'Name'), head('size', 'Size', 'num'), head('date', 'Modified', 'num'),
      h('th', null, 'State'), h('th', { class: 'num' }, h('span', { class: 'muted' }, 'Actions'))));
    const folders = sortBy(state.folders, state.sort === 'size' ? 'name' : state.sort, state.dir);
    const files = sortBy(state.files, state.sort, state.dir);
    if (state.loading && !folders.length && !files.length) {
      fill(body, h('tr', null, h('td', { colspan: 5, class: 'empty' }, 'Loading…')));
    } else if (!folders.length && !files.length) {
      fill(body, h('tr', null, h('td', { colspan: 5, class: 'empty' },
        'This folder is empty. Drop files here, or use Upload files.')));
    } else {
      fill(body, folders.map(folderRow), files.map(fileRow));
    }
    more.hidden = !state.cursor;
  }

  // Each reload starts a new generation: a page that answers for an older one is dropped, so
  // overlapping loads never list a row twice.
  let generation = 0;
  async function load() {
    const mine = generation;
    state.loading = true;
    more.disabled = true;
    draw();
    try {
      const page = await api('GET', `/v1/folders/${folderId}/children${query({ limit: PAGE, cursor: state.cursor })}`);
      if (mine !== generation) return;
      state.folders.push(...page.folders);
      state.files.push(...page.files);
      state.cursor = page.next_cursor;
      error.textContent = '';
    } catch (e) {
      if (mine === generation) error.textContent = words(e);
    } finally {
      if (mine === generation) {
        state.loading = false;
        more.disabled = false;
        draw();
      }
    }
  }
  function reload() {
    generation += 1;
    state.folders = [];
    state.files = [];
    state.cursor = null;
    load();
  }

  const newFolder = async () => {
    const name = await askName('New folder', 'Folder name');
    if (!name) return;
    try {
      await api('POST', '/v1/folders', { name, parent_id: parentId || undefined });
      say(`Folder ${name} created.`);
      reload();
    } catch (e) { say(words(e)); }
  };

  // Uploads land here; a finished one appears in the list; verdicts arrive live.
  const uploads = uploader(parentId, (file) => {
    const at = state.files.findIndex((f) => f.id === file.id);
    if (at >= 0) state.files[at] = file; else state.files.push(file);
    draw();
  });
  const unsubscribe = onScanned((event) => {
    const file = state.files.find((f) => f.id === event.file_id);
    if (!file) return;
    file.verdict = event.verdict;
    // A first verdict, or a re-scan's under newer rules (which may quarantine a file again).
    if (['scanning', 'available', 'quarantined'].includes(file.status)) file.status = statusAfter(event.verdict, event.status);
    draw();
  });
  // After a break in the live events, the listing is read again once.
  const unresync = onResync(reload);
  window.addEventListener('hashchange', () => { unsubscribe(); unresync(); }, { once: true });

  const drop = h('section', { class: 'drop', 'aria-label': 'Drop files here to upload them' }, table, more);
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    uploads.add([...(e.dataTransfer?.files ?? [])]);
  });

  main.append(
    title, h('nav', { 'aria-label': 'Breadcrumbs' }, crumbs),
    h('div', { class: 'toolbar' },
      h('button', { type: 'button', class: 'primary', onclick: () => uploads.pick() }, 'Upload files'),
      h('button', { type: 'button', onclick: newFolder }, 'New folder'),
      h('span', { class: 'muted small' }, 'or drop files on the list')),
    uploads.element, error, drop);

  if (folderId !== 'root') {
    try {
      const folder = await api('GET', `/v1/folders/${folderId}`);
      title.textContent = folder.name;
      fill(crumbs, h('li', null, h('a', { href: '#/files' }, 'All files')),
        folder.path.map((p, i) => h('li', null, i === folder.path.length - 1
          ? h('span', { 'aria-current': 'page' }, p.name)
          : h('a', { href: `#/files/${p.id}` }, p.name))));
    } catch (e) {
      fill(main, h('h1', null, 'Folder not found'), h('p', null, words(e)), h('a', { href: '#/files' }, 'Back to all files'));
      return;
    }
  } else {
    fill(crumbs, h('li', null, h('span', { 'aria-current': 'page' }, 'All files')));
  }
  await load();
}

export async function trashScreen(main) {
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const error = h('p', { class: 'error', role: 'alert' });
  const items = { folders: [], files: [] };
  let cursor = null;

  const restore = async (f) => {
    try {
      await api('POST', `/v1/files/${f.id}/restore`);
      items.files = items.files.filter((x) => x.id !== f.id);
      say(`${f.name} is back in your files.`);
      draw();
    } catch (e) { say(words(e)); }
  };
  const purge = async (f) => {
    const ok = await confirmAction('Purge for good?', `“${f.name}” will be deleted for good: it cannot be restored afterwards.`, 'Purge');
    if (!ok) return;
    try {
      await api('DELETE', `/v1/files/${f.id}/purge`);
      items.files = items.files.filter((x) => x.id !== f.id);
      say(`${f.name} was purged.`);
      draw();
    } catch (e) { say(words(e)); }
  };

  function draw() {
    if (!items.folders.length && !items.files.length) {
      fill(body, h('tr', null, h('td', { colspan: 4, class: 'empty' }, 'The trash is empty.')));
    } else {
      fill(body,
        items.folders.map((d) => h('tr', null,
          h('td', null, folderIcon(), h('span', null, d.name)),
          h('td', { class: 'num' }, when(d.created_at)),
          h('td', { class: 'muted small', colspan: 2 }, 'Folder: its files are listed below, each restored or purged on its own.'))),
        items.files.map((f) => h('tr', { 'data-file-id': f.id },
          h('td', null, f.name),
          h('td', { class: 'num' }, bytes(f.size)),
          h('td', { class: 'small' }, f.purge_at ? `Purged on ${when(f.purge_at)}` : ''),
          h('td', { class: 'num' }, h('div', { class: 'actions-cell' },
            h('button', { type: 'button', class: 'link', onclick: () => restore(f), 'aria-label': `Restore ${f.name}` }, 'Restore'),
            h('button', { type: 'button', class: 'link danger', onclick: () => purge(f), 'aria-label': `Purge ${f.name}` }, 'Purge'))))));
    }
    more.hidden = !cursor;
  }
  async function load() {
    try {
      const page = await api('GET', `/v1/trash${query({ limit: PAGE, cursor })}`);
      items.folders.push(...page.folders);
      items.files.push(...page.files);
      cursor = page.next_cursor;
    } catch (e) {
      error.textContent = words(e);
    }
    draw();
  }
  more.addEventListener('click', load);
  main.append(h('h1', null, 'Trash'),
    h('p', { class: 'muted' }, 'Files in the trash are purged for good on the date beside each. A restored file returns to its folder, or to the top level when its folder is in the trash too.'),
    error,
    h('table', { 'aria-label': 'Trash' },
      h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', { class: 'num' }, 'Size'), h('th', null, 'Goes'), h('th', { class: 'num' }, 'Actions'))),
      body),
    more);
  fill(body, h('tr', null, h('td', { colspan: 4, class: 'empty' }, 'Loading…')));
  await load();
}
