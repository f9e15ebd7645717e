// A file's share links: create one (expiry, optional password, download cap), copy it, list the
// live ones and revoke them. A link's token is shown once, when it is made.

import { api, words } from './api.js';
import { h, fill, when, dialog, copyField, fields } from './dom.js';

const EXPIRY = [
  [3600, '1 hour'],
  [86400, '1 day'],
  [7 * 86400, '7 days'],
  [30 * 86400, '30 days'],
];

export function shareDialog(file) {
  return dialog(`Share “${file.name}”`, (done) => {
    const result = h('div', { 'aria-live': 'polite' });
    const error = h('p', { class: 'error', role: 'alert' });
    const list = h('ul', { class: 'share-list' });

    const refresh = async () => {
      try {
        const { items } = await api('GET', `/v1/files/${file.id}/shares`);
        fill(list, items.length
          ? items.map((s) => h('li', { 'data-share-id': s.id },
            `Until ${when(s.expires_at)} · ${s.downloads}${s.max_downloads ? ` of ${s.max_downloads}` : ''} downloads`,
            s.has_password ? ' · password' : '', ' ',
            h('button', {
              type: 'button',
              class: 'link danger',
              onclick: async () => {
                try {
                  await api('DELETE', `/v1/shares/${s.id}`);
                  await refresh();
                } catch (e) { error.textContent = words(e); }
              },
            }, 'Revoke')))
          : h('li', { class: 'muted' }, 'No live links.'));
      } catch (e) {
        error.textContent = words(e);
      }
    };

    const form = h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        const f = fields(form);
        const body = { expires_in_seconds: Number(f.expires) };
        if (f.password) body.password = f.password;
        if (f.max_downloads) body.max_downloads = Number(f.max_downloads);
        error.textContent = '';
        try {
          const share = await api('POST', `/v1/files/${file.id}/shares`, body);
          fill(result,
            copyField('Link (shown once: copy it now)', share.url),
            h('p', { class: 'hint' }, `Works until ${when(share.expires_at)}${body.password ? '; whoever opens it is asked for the password' : ''}.`));
          form.reset();
          await refresh();
        } catch (err) {
          error.textContent = words(err);
        }
      },
    },
    h('label', { for: 'share-expires' }, 'Expires after'),
    h('select', { id: 'share-expires', name: 'expires' },
      EXPIRY.map(([secs, text]) => h('option', { value: secs, selected: secs === 86400 }, text))),
    h('label', { for: 'share-password' }, 'Password (optional)'),
    h('input', { id: 'share-password', name: 'password', type: 'password', autocomplete: 'new-password' }),
    h('label', { for: 'share-max' }, 'Most downloads (optional)'),
    h('input', { id: 'share-max', name: 'max_downloads', type: 'number', min: 1, max: 1000000 }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create link')));

    refresh();
    return [form, error, result, h('h3', null, 'Live links'), list,
      h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => done() }, 'Close'))];
  });
}
