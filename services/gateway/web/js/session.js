// Who is signed in, and moving between screens. (Screens import this, never main.js.)

import { api, setCsrf } from './api.js';
import { startEvents, stopEvents } from './events.js';

/** The signed-in user (`GET /v1/me`), or null. */
export const session = { me: null };

let rerender = () => {};
export function setRenderer(fn) { rerender = fn; }

export function isAdmin() {
  return ['owner', 'admin'].includes(session.me?.role);
}

/** Shows the screen at `#/path` (again, if it is already shown). */
export function go(path) {
  if (location.hash === `#/${path}`) rerender();
  else location.hash = `#/${path}`;
}

/** Loads who we are; opens the live events. Throws when no session. */
export async function loadSession() {
  session.me = await api('GET', '/v1/me');
  setCsrf(session.me.csrf_token);
  startEvents();
}

/** After a login: who we are, the live events, then `target`. */
export async function signedIn(target = 'files') {
  await loadSession();
  go(target);
}

export function forget() {
  stopEvents();
  session.me = null;
  setCsrf(null);
}
