// Owners' and admins' screens: members, the audit log (paged, filtered, its chain verified,
// exported), the scan settings (the NSFW policy), the scan webhook, and deleting the organisation.

import { api, query, words } from './api.js';
import { h, fill, say, when, copyField, fields, confirmAction } from './dom.js';
import { session, isAdmin, go } from './session.js';

const ACTIONS = ['file.upload', 'file.download', 'file.rename', 'file.move', 'file.delete', 'file.restore',
  'file.purge', 'file.release', 'file.scanned', 'file.quarantined', 'folder.create', 'folder.rename',
  'folder.move', 'folder.delete', 'share.create', 'share.revoke', 'share.download', 'auth.login',
  'auth.login_failed', 'auth.password_change', 'apikey.create', 'apikey.revoke', 'member.add',
  'member.remove', 'org.delete', 'org.restore', 'org.purge', 'org.settings_update', 'scan.completed', 'scan.delete', 'webhook.set', 'webhook.delete', 'auth.totp_enable'];

const TABS = [['members', 'Members'], ['audit', 'Audit log'], ['scanning', 'Scanning'], ['webhook', 'Webhook'], ['org', 'Organisation']];

const POLICIES = [
  ['off', 'Off', 'Images are not classified and nothing is recorded.'],
  ['flag', 'Flag', 'An image at or above a threshold gets the verdict “not safe for work”, with its scores; it stays downloadable.'],
  ['quarantine', 'Quarantine', 'As flag, and the image is quarantined: nobody can download or share it until an admin releases it.'],
];

async function scanningTab(box) {
  const error = h('p', { class: 'error', role: 'alert' });
  let current;
  try {
    current = (await api('GET', '/v1/org/settings')).nsfw;
  } catch (e) {
    box.append(error);
    error.textContent = words(e);
    return;
  }
  const threshold = (name, label) => h('div', null,
    h('label', { for: `nsfw-${name}` }, label),
    h('input', { id: `nsfw-${name}`, name, type: 'number', min: '0.0001', max: '1', step: 'any', required: true, value: String(current.thresholds[name]) }));
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      const f = fields(form);
      try {
        const saved = await api('PUT', '/v1/org/settings', {
          nsfw: { policy: f.policy, thresholds: { porn: Number(f.porn), hentai: Number(f.hentai), sexy: Number(f.sexy) } },
        });
        current = saved.nsfw;
        say(`Saved: images are now ${{ off: 'not classified', flag: 'flagged', quarantine: 'quarantined' }[current.policy]} when they reach a threshold.`);
      } catch (err) { error.textContent = words(err); }
    },
  },
  h('fieldset', null, h('legend', null, 'Images that are not safe for work'),
    POLICIES.map(([value, label, help]) => h('div', { class: 'choice' },
      h('input', { type: 'radio', id: `nsfw-policy-${value}`, name: 'policy', value, checked: current.policy === value }),
      h('label', { for: `nsfw-policy-${value}` }, h('strong', null, label), ' — ', help)))),
  h('fieldset', null, h('legend', null, 'Thresholds (above 0, at most 1: lower flags more)'),
    threshold('porn', 'Explicit photos'), threshold('hentai', 'Explicit drawings'), threshold('sexy', 'Suggestive (swimwear, lingerie)')),
  error,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save')));
  box.append(h('p', { class: 'muted' }, 'Every uploaded image (JPEG, PNG, GIF, WebP, also inside archives) is classified on this server; no image leaves it. ',
    current.model ? h('span', null, 'Model: ', h('code', { class: 'mono' }, current.model), '.') : 'No model is installed on this server: images are not classified whatever the policy.',
    ' Malware and sensitive data always outrank this verdict. A change applies to uploads from now on.'),
  form);
}

async function membersTab(box) {
  const body = h('tbody');
  const error = h('p', { class: 'error', role: 'alert' });
  const refresh = async () => {
    try {
      const { items } = await api('GET', '/v1/members');
      fill(body, items.map((m) => h('tr', { 'data-member': m.email },
        h('td', null, m.email),
        h('td', null, m.role),
        h('td', null, m.totp_enabled ? 'on' : 'off'),
        h('td', { class: 'small' }, when(m.created_at)),
        h('td', null, m.user_id === session.me.user_id ? h('span', { class: 'muted small' }, 'you') : h('button', {
          type: 'button',
          class: 'link danger',
          onclick: async () => {
            if (!await confirmAction('Remove this member?', `${m.email} is signed out everywhere at once, their API keys stop working, and they can no longer sign in. Their files stay with the organisation.`, 'Remove')) return;
            try {
              await api('DELETE', `/v1/members/${m.user_id}`);
              say(`${m.email} was removed.`);
              refresh();
            } catch (e) { error.textContent = words(e); }
          },
        }, 'Remove')))));
    } catch (e) { error.textContent = words(e); }
  };
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      const f = fields(form);
      error.textContent = '';
      try {
        await api('POST', '/v1/members', { email: f.email, password: f.password, role: f.role });
        say(`${f.email} was added. Give them their first password in person; they can change it under Account.`);
        form.reset();
        refresh();
      } catch (err) { error.textContent = words(err); }
    },
  },
  h('h2', null, 'Add a member'),
  h('label', { for: 'member-email' }, 'Email'),
  h('input', { id: 'member-email', name: 'email', type: 'email', required: true, autocomplete: 'off' }),
  h('label', { for: 'member-password' }, 'First password'),
  h('input', { id: 'member-password', name: 'password', type: 'password', required: true, minlength: 12, autocomplete: 'new-password' }),
  h('label', { for: 'member-role' }, 'Role'),
  h('select', { id: 'member-role', name: 'role' }, h('option', { value: 'member' }, 'Member'), h('option', { value: 'admin' }, 'Admin')),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add member')));
  box.append(h('table', { 'aria-label': 'Members' },
    h('thead', null, h('tr', null, ['Email', 'Role', 'Two-step', 'Added', ''].map((t) => h('th', null, t)))), body),
  error, form);
  await refresh();
}

async function auditTab(box) {
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const error = h('p', { class: 'error', role: 'alert' });
  const verdict = h('div', { 'aria-live': 'polite', id: 'audit-verify' });
  let cursor = null;
  let filter = {};
  const emails = new Map();
  try {
    for (const m of (await api('GET', '/v1/members')).items) emails.set(m.user_id, m.email);
  } catch { /* ids are shown instead */ }
  const who = (actor) => {
    const id = actor.replace(/^user:/, '');
    return emails.get(id) ?? actor;
  };
  const load = async (fresh) => {
    if (fresh) { cursor = null; fill(body); }
    try {
      const page = await api('GET', `/v1/audit${query({ limit: 50, cursor, ...filter })}`);
      body.append(...page.items.map((e) => h('tr', { 'data-action': e.action },
        h('td', { class: 'num' }, String(e.seq)),
        h('td', { class: 'small' }, when(e.at)),
        h('td', { class: 'small' }, who(e.actor)),
        h('td', null, e.action),
        h('td', { class: 'small mono' }, e.target),
        h('td', { class: e.outcome === 'success' ? 'okay' : 'error' }, e.outcome))));
      if (!body.children.length) body.append(h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'No events match.')));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      error.textContent = '';
    } catch (e) { error.textContent = words(e); }
  };
  more.addEventListener('click', () => load(false));
  const form = h('form', {
    class: 'toolbar',
    onsubmit: (e) => {
      e.preventDefault();
      const f = fields(form);
      filter = { action: f.action, since: f.since ? new Date(`${f.since}T00:00:00`).toISOString() : '' };
      load(true);
    },
  },
  h('label', { class: 'inline', for: 'audit-action' }, 'Action'),
  h('select', { id: 'audit-action', name: 'action' }, h('option', { value: '' }, 'All'), ACTIONS.map((a) => h('option', { value: a }, a))),
  h('label', { class: 'inline', for: 'audit-since' }, 'From'),
  h('input', { id: 'audit-since', name: 'since', type: 'date' }),
  h('button', { type: 'submit' }, 'Filter'));
  const verify = h('button', {
    type: 'button',
    onclick: async () => {
      fill(verdict, 'Verifying…');
      try {
        const v = await api('GET', '/v1/audit/verify');
        fill(verdict, h('p', { class: v.ok ? 'okay' : 'error' },
          v.ok ? `Chain verified: ${v.count} events, unbroken.` : `The chain does NOT verify (${v.count} events). Tell your security team.`),
        h('p', { class: 'small' }, 'Head hash: ', h('code', { class: 'mono' }, v.head_hash)));
      } catch (e) { fill(verdict, h('p', { class: 'error' }, words(e))); }
    },
  }, 'Verify chain');
  box.append(
    h('div', { class: 'toolbar' }, verify,
      h('a', { class: 'button', href: '/v1/audit/export', download: 'coffer-audit.ndjson' }, 'Export (NDJSON)'),
      h('span', { class: 'muted small' }, 'Verify an export offline with: coffer audit verify FILE')),
    verdict, form, error,
    h('table', { 'aria-label': 'Audit log' },
      h('thead', null, h('tr', null, ['#', 'When', 'Who', 'Action', 'Target', 'Outcome'].map((t) => h('th', null, t)))), body),
    more);
  await load(true);
}

async function webhookTab(box) {
  const current = h('div');
  const secret = h('div', { 'aria-live': 'polite' });
  const error = h('p', { class: 'error', role: 'alert' });
  const refresh = async () => {
    try {
      const hook = await api('GET', '/v1/webhook');
      fill(current, h('p', null, 'Scan results are sent to ', h('code', { class: 'mono' }, hook.url), ` (since ${when(hook.created_at)}).`),
        h('button', {
          type: 'button',
          class: 'danger',
          onclick: async () => {
            if (!await confirmAction('Delete the webhook?', 'No more scan results are sent, and deliveries not yet made are dropped.', 'Delete')) return;
            try {
              await api('DELETE', '/v1/webhook');
              fill(secret);
              say('The webhook was deleted.');
              refresh();
            } catch (e) { error.textContent = words(e); }
          },
        }, 'Delete webhook'));
    } catch (e) {
      if (e.status === 404) fill(current, h('p', { class: 'muted' }, 'No webhook: scan results are not sent anywhere.'));
      else error.textContent = words(e);
    }
  };
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        const hook = await api('PUT', '/v1/webhook', { url: fields(form).url });
        fill(secret, copyField('Signing secret (shown only now: your endpoint verifies deliveries with it)', hook.secret));
        form.reset();
        refresh();
      } catch (err) { error.textContent = words(err); }
    },
  },
  h('label', { for: 'webhook-url' }, 'Endpoint URL (https)'),
  h('input', { id: 'webhook-url', name: 'url', type: 'url', required: true, placeholder: 'https://hooks.example.com/coffer' }),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Set webhook')));
  box.append(h('p', { class: 'muted' }, 'Each scan result is posted to your endpoint, signed (Standard Webhooks). Setting a new URL replaces the old one and makes a new secret.'),
    current, error, form, secret);
  await refresh();
}

function orgTab(box) {
  if (session.me.role !== 'owner') {
    box.append(h('p', { class: 'muted' }, 'Only owners can delete the organisation.'));
    return;
  }
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      if (fields(form).confirm !== 'delete') { error.textContent = 'Type delete to confirm.'; return; }
      try {
        const answer = await api('DELETE', '/v1/org');
        fill(box, h('h2', null, 'The organisation is deleted'),
          h('p', null, `Nobody can sign in to it any more. Its files are purged on ${when(answer.purge_after)}; until then an owner can restore it from the sign-in page.`));
        setTimeout(() => go('login'), 10000);
      } catch (err) { error.textContent = words(err); }
    },
  },
  h('label', { for: 'org-confirm' }, 'Type delete to confirm'),
  h('input', { id: 'org-confirm', name: 'confirm', autocomplete: 'off', required: true }),
  error,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, 'Delete the organisation')));
  box.append(h('h2', null, 'Delete the organisation'),
    h('p', null, 'Deleting disables the organisation at once: nobody can sign in, API keys and share links stop working. Its files, folders, shares and audit log are kept for a grace period (30 days unless your operator changed it; the purge date is shown once deleted), then purged for good. Until then an owner can undo it with “Restore a deleted organisation” on the sign-in page.'),
    form);
}

export async function adminScreen(main, [tab = 'members']) {
  main.append(h('h1', null, 'Admin'));
  if (!isAdmin()) {
    main.append(h('p', null, 'Only owners and admins of your organisation see this page.'));
    return;
  }
  const name = TABS.some(([t]) => t === tab) ? tab : 'members';
  main.append(h('nav', { class: 'tabs', 'aria-label': 'Admin' },
    TABS.map(([t, text]) => h('a', { href: `#/admin/${t}`, 'aria-current': t === name ? 'page' : null }, text))));
  const box = h('section');
  main.append(box);
  await { members: membersTab, audit: auditTab, scanning: scanningTab, webhook: webhookTab, org: orgTab }[name](box);
}
