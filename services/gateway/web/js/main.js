// The app's shell: who is signed in, the navigation, and the screen for the address's #route.

import { api, whenSignedOut } from './api.js';
import { h, fill, say } from './dom.js';
import { forget, go, isAdmin, loadSession, session, setRenderer } from './session.js';

const main = document.getElementById('main');
const top = document.getElementById('top');

const screens = {
  files: () => import('./files.js').then((m) => m.filesScreen),
  trash: () => import('./files.js').then((m) => m.trashScreen),
  account: () => import('./account.js').then((m) => m.accountScreen),
  admin: () => import('./admin.js').then((m) => m.adminScreen),
  login: () => import('./auth.js').then((m) => m.loginScreen),
  signup: () => import('./auth.js').then((m) => m.signupScreen),
  restore: () => import('./auth.js').then((m) => m.restoreOrgScreen),
};

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  return { name: name || 'files', args: rest.map(decodeURIComponent) };
}

function header() {
  const { name } = route();
  const link = (path, text) => h('a', { href: `#/${path}`, 'aria-current': name === path ? 'page' : null }, text);
  if (!session.me) {
    return fill(top, h('a', { class: 'brand', href: '#/login' }, 'Coffer'));
  }
  return fill(top,
    h('a', { class: 'brand', href: '#/files' }, 'Coffer'),
    h('nav', { 'aria-label': 'Main' },
      link('files', 'Files'), link('trash', 'Trash'), link('account', 'Account'),
      isAdmin() ? link('admin', 'Admin') : null),
    h('div', { class: 'who' },
      h('span', null, `${session.me.email} · ${session.me.role}`),
      h('button', { type: 'button', onclick: signOut }, 'Sign out')));
}

async function signOut() {
  forget();
  try { await api('POST', '/v1/auth/logout'); } catch { /* the session is gone either way */ }
  signedOut('You are signed out.');
}

function signedOut(message) {
  forget();
  go('login');
  if (message) say(message);
}
whenSignedOut(() => { if (session.me) signedOut('Your session ended. Sign in again.'); });

let rendering = 0;
async function render() {
  const mine = ++rendering;
  let { name, args } = route();
  const open = ['login', 'signup', 'restore'].includes(name);
  if (!session.me && !open) name = 'login';
  if (session.me && open) name = 'files';
  header();
  if (!screens[name]) name = 'files';
  main.setAttribute('aria-busy', 'true');
  const screen = await screens[name]();
  if (mine !== rendering) return;
  fill(main);
  // A new screen: reading and tabbing start at its content (unless it focuses a field).
  main.focus({ preventScroll: true });
  try {
    await screen(main, args);
  } catch (e) {
    fill(main, h('p', { class: 'error', role: 'alert' }, e.message ?? String(e)));
  } finally {
    if (mine === rendering) main.setAttribute('aria-busy', 'false');
  }
}

async function boot() {
  try {
    await loadSession();
  } catch {
    forget();
  }
  setRenderer(render);
  window.addEventListener('hashchange', render);
  await render();
}

boot();
