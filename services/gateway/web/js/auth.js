// Signing up, signing in (with the second step when two-step sign-in is on), restoring a
// deleted organisation.

import { api, ApiError, setCsrf, words } from './api.js';
import { h, fields, say } from './dom.js';
import { signedIn } from './session.js';

function errorLine() {
  return h('p', { class: 'error', role: 'alert' });
}

export function loginScreen(main) {
  const error = errorLine();
  const codeField = h('div', { hidden: true },
    h('label', { for: 'login-code' }, 'Code from your authenticator app'),
    h('input', { id: 'login-code', name: 'totp_code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6 }),
    h('p', { class: 'hint' }, 'Two-step sign-in is on for this account: enter the 6-digit code.'));
  const submit = h('button', { class: 'primary', type: 'submit' }, 'Sign in');
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      const f = fields(form);
      const body = { email: f.email, password: f.password };
      if (!codeField.hidden && f.totp_code) body.totp_code = f.totp_code;
      submit.disabled = true;
      error.textContent = '';
      try {
        const login = await api('POST', '/v1/auth/login', body);
        setCsrf(login.csrf_token);
        await signedIn();
        say('Signed in.');
      } catch (err) {
        if (err instanceof ApiError && err.code === 'totp_required') {
          codeField.hidden = false;
          form.querySelector('#login-code').focus();
          error.textContent = 'Enter the code from your authenticator app.';
        } else if (err instanceof ApiError && err.status === 401) {
          error.textContent = codeField.hidden
            ? 'The email or password is not right. Check them and try again.'
            : 'The email, password or code is not right. Codes change every 30 seconds: try the current one.';
        } else {
          error.textContent = words(err);
        }
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('h1', null, 'Sign in to Coffer'),
  h('label', { for: 'login-email' }, 'Email'),
  h('input', { id: 'login-email', name: 'email', type: 'email', autocomplete: 'username', required: true }),
  h('label', { for: 'login-password' }, 'Password'),
  h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
  codeField,
  error,
  h('div', { class: 'actions' }, submit,
    h('a', { href: '#/signup' }, 'Create an organisation'),
    h('a', { href: '#/restore' }, 'Restore a deleted organisation')));
  main.append(form);
  form.querySelector('#login-email').focus();
}

export function signupScreen(main) {
  const error = errorLine();
  const submit = h('button', { class: 'primary', type: 'submit' }, 'Create and sign in');
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      const f = fields(form);
      submit.disabled = true;
      error.textContent = '';
      try {
        await api('POST', '/v1/auth/signup', { org_name: f.org_name, email: f.email, password: f.password });
        const login = await api('POST', '/v1/auth/login', { email: f.email, password: f.password });
        setCsrf(login.csrf_token);
        await signedIn();
        say('Your organisation is ready. You own it.');
      } catch (err) {
        error.textContent = err instanceof ApiError && err.code === 'already_exists'
          ? 'An account with this email exists. Sign in instead.'
          : words(err);
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('h1', null, 'Create an organisation'),
  h('p', { class: 'muted' }, 'You will own it and can add members afterwards.'),
  h('label', { for: 'signup-org' }, 'Organisation name'),
  h('input', { id: 'signup-org', name: 'org_name', required: true, maxlength: 200 }),
  h('label', { for: 'signup-email' }, 'Your email'),
  h('input', { id: 'signup-email', name: 'email', type: 'email', autocomplete: 'username', required: true }),
  h('label', { for: 'signup-password' }, 'Password'),
  h('input', { id: 'signup-password', name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 12 }),
  h('p', { class: 'hint' }, 'At least 12 characters. A passphrase of several words is easiest to remember.'),
  error,
  h('div', { class: 'actions' }, submit, h('a', { href: '#/login' }, 'I have an account')));
  main.append(form);
  form.querySelector('#signup-org').focus();
}

export function restoreOrgScreen(main) {
  const error = errorLine();
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      const f = fields(form);
      error.textContent = '';
      const body = { email: f.email, password: f.password };
      if (f.totp_code) body.totp_code = f.totp_code;
      try {
        await api('POST', '/v1/org/restore', body);
        error.textContent = '';
        form.replaceChildren(h('h1', null, 'Organisation restored'),
          h('p', null, 'Everyone in it can sign in again; nothing was purged.'),
          h('a', { class: 'button primary', href: '#/login' }, 'Sign in'));
      } catch (err) {
        error.textContent = err instanceof ApiError && err.status === 401
          ? 'The email, password or code is not right, or this account is not an owner of a deleted organisation.'
          : words(err);
      }
    },
  },
  h('h1', null, 'Restore a deleted organisation'),
  h('p', { class: 'muted' }, 'An owner can undo a deletion during its grace period (30 days by default), before the organisation and its files are purged.'),
  h('label', { for: 'restore-email' }, 'Owner email'),
  h('input', { id: 'restore-email', name: 'email', type: 'email', required: true }),
  h('label', { for: 'restore-password' }, 'Password'),
  h('input', { id: 'restore-password', name: 'password', type: 'password', required: true }),
  h('label', { for: 'restore-code' }, 'Authenticator code (if two-step sign-in is on)'),
  h('input', { id: 'restore-code', name: 'totp_code', inputmode: 'numeric', maxlength: 6 }),
  error,
  h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Restore'), h('a', { href: '#/login' }, 'Back to sign in')));
  main.append(form);
}
