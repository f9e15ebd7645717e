// The account: password change, two-step sign-in (TOTP, with its QR code drawn here in the
// browser), and API keys.

import { api, words } from './api.js';
import { h, fill, say, svg, when, copyField, fields, confirmAction } from './dom.js';
import { session, loadSession } from './session.js';
import qrcode from '../vendor/qrcode-generator/qrcode.mjs';

const SCOPES = [
  ['files:read', 'Read files'],
  ['files:write', 'Change files'],
  ['audit:read', 'Read the audit log'],
  ['scans:write', 'Use the scan API'],
];

/** The QR code of `text` as an SVG, drawn from the vendored encoder's modules. */
export function qrSvg(text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  let d = '';
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) if (qr.isDark(r, c)) d += `M${c + 4},${r + 4}h1v1h-1z`;
  }
  const el = svg('svg', { viewBox: `0 0 ${n + 8} ${n + 8}`, class: 'qr', role: 'img', 'aria-label': 'QR code for your authenticator app' });
  el.append(svg('rect', { width: n + 8, height: n + 8, fill: '#fff' }), svg('path', { d, fill: '#000' }));
  return el;
}

function passwordSection() {
  const message = h('p', { role: 'status' });
  const form = h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault();
      const f = fields(form);
      message.className = 'error';
      if (f.new_password !== f.again) {
        message.textContent = 'The two new passwords differ. Type the same one twice.';
        return;
      }
      try {
        await api('POST', '/v1/auth/password', { current_password: f.current_password, new_password: f.new_password });
        form.reset();
        message.className = 'okay';
        message.textContent = 'Password changed. Every other session of yours was signed out.';
      } catch (err) {
        message.textContent = err.status === 401
          ? 'The current password is not right.'
          : words(err);
      }
    },
  },
  h('h2', null, 'Password'),
  h('label', { for: 'pw-current' }, 'Current password'),
  h('input', { id: 'pw-current', name: 'current_password', type: 'password', autocomplete: 'current-password', required: true }),
  h('label', { for: 'pw-new' }, 'New password'),
  h('input', { id: 'pw-new', name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 }),
  h('label', { for: 'pw-again' }, 'New password again'),
  h('input', { id: 'pw-again', name: 'again', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 }),
  message,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Change password')));
  return form;
}

function totpSection() {
  const box = h('section', { class: 'card' });
  const draw = () => {
    if (session.me.totp_enabled) {
      fill(box, h('h2', null, 'Two-step sign-in'),
        h('p', { class: 'okay' }, 'On: signing in asks for a code from your authenticator app.'));
      return;
    }
    const start = h('button', { type: 'button', class: 'primary' }, 'Turn on two-step sign-in');
    fill(box, h('h2', null, 'Two-step sign-in'),
      h('p', null, 'Off. With it on, signing in also asks for a 6-digit code from an authenticator app on your phone.'),
      start);
    start.addEventListener('click', async () => {
      let enrol;
      try {
        enrol = await api('POST', '/v1/auth/totp/enroll');
      } catch (e) { say(words(e)); return; }
      const message = h('p', { class: 'error', role: 'alert' });
      const form = h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            await api('POST', '/v1/auth/totp/confirm', { code: fields(form).code.trim() });
            await loadSession();
            say('Two-step sign-in is on.');
            draw();
          } catch (err) {
            message.textContent = err.status === 401 || err.status === 400
              ? 'That code is not right. Codes change every 30 seconds: enter the current one.'
              : words(err);
          }
        },
      },
      h('label', { for: 'totp-code' }, 'Code from the app'),
      h('input', { id: 'totp-code', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6, required: true }),
      message,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Confirm')));
      fill(box, h('h2', null, 'Two-step sign-in'),
        h('p', null, 'Scan this code with your authenticator app, or type the key below into it. Then enter the code the app shows.'),
        qrSvg(enrol.otpauth_uri),
        h('p', null, 'Key: ', h('code', { class: 'mono', id: 'totp-secret' }, enrol.secret)),
        form);
      form.querySelector('input').focus();
    });
  };
  draw();
  return box;
}

function keysSection() {
  const box = h('section', { class: 'card' });
  const body = h('tbody');
  const created = h('div', { 'aria-live': 'polite' });
  const error = h('p', { class: 'error', role: 'alert' });
  const refresh = async () => {
    try {
      const { items } = await api('GET', '/v1/api-keys');
      fill(body, items.length
        ? items.map((k) => h('tr', { 'data-key-id': k.id },
          h('td', null, k.name),
          h('td', { class: 'small' }, k.scopes.join(', ')),
          h('td', { class: 'mono small' }, `${k.prefix}…`),
          h('td', { class: 'small' }, when(k.created_at)),
          h('td', { class: 'small' }, k.last_used_at ? when(k.last_used_at) : 'never'),
          h('td', null, h('button', {
            type: 'button',
            class: 'link danger',
            onclick: async () => {
              if (!await confirmAction('Revoke this key?', `“${k.name}” stops working at once, for every program that uses it.`, 'Revoke')) return;
              try {
                await api('DELETE', `/v1/api-keys/${k.id}`);
                say(`Key ${k.name} revoked.`);
                refresh();
              } catch (e) { error.textContent = words(e); }
            },
          }, 'Revoke'))))
        : h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'No API keys.')));
    } catch (e) { error.textContent = words(e); }
  };
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const scopes = data.getAll('scopes');
      error.textContent = '';
      if (!scopes.length) { error.textContent = 'Choose at least one permission.'; return; }
      try {
        const key = await api('POST', '/v1/api-keys', { name: data.get('name'), scopes });
        fill(created, copyField('Your new key (shown only now: copy it and keep it safe)', key.key));
        form.reset();
        refresh();
      } catch (err) { error.textContent = words(err); }
    },
  },
  h('label', { for: 'key-name' }, 'Name'),
  h('input', { id: 'key-name', name: 'name', required: true, maxlength: 100, placeholder: 'backup script' }),
  h('fieldset', null, h('legend', null, 'Permissions'),
    SCOPES.map(([scope, text]) => h('label', { class: 'inline' },
      h('input', { type: 'checkbox', name: 'scopes', value: scope }), `${text} (${scope})`))),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create key')));
  box.append(h('h2', null, 'API keys'),
    h('p', { class: 'muted' }, 'Keys let programs use Coffer as you, within the permissions you give them. They cannot manage your account or organisation.'),
    form, error, created,
    h('table', { 'aria-label': 'API keys' },
      h('thead', null, h('tr', null, ['Name', 'Permissions', 'Starts with', 'Created', 'Last used', ''].map((t) => h('th', null, t)))),
      body));
  refresh();
  return box;
}

export async function accountScreen(main) {
  main.append(h('h1', null, 'Account'),
    h('p', { class: 'muted' }, `${session.me.email} · ${session.me.role} of your organisation`),
    passwordSection(), h('p'), totpSection(), h('p'), keysSection());
}
