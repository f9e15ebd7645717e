// The gateway's JSON API (API.md), with the session's CSRF token on every unsafe request. The
// token lives in this module's memory only: never in localStorage, never in a cookie the page
// can read; the session cookie itself is HttpOnly.

let csrf = null;
let onSignedOut = () => {};

export function setCsrf(token) { csrf = token; }
export function whenSignedOut(fn) { onSignedOut = fn; }

/** An API error with its code and a sentence that says what happened and what to do. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const WORDS = {
  quota_exceeded: "Your organisation's storage is full. Purge files from the trash or ask an owner for more space.",
  already_exists: 'Something with this name is already here. Choose another name.',
  rate_limited: 'Too many requests just now. Wait a moment and try again.',
  not_ready: 'This file is still being checked for malware. Try again in a moment.',
  quarantined: 'This file is quarantined: it was found unsafe and cannot be downloaded or shared.',
  unavailable: 'Coffer is briefly unavailable. Try again in a moment.',
  session_required: 'This needs a signed-in browser session (an API key cannot do it).',
  permission_denied: 'You are not allowed to do this. Ask an owner or admin of your organisation.',
  not_found: 'This no longer exists, or you cannot see it. Reload the page.',
};

/** Words for an error: ours for the codes a person meets, else the server's own text. */
export function words(error) {
  if (!(error instanceof ApiError)) return 'Something went wrong. Try again.';
  if (error.code === 'rate_limited' && error.retryAfter) {
    return `Too many requests just now. Try again in ${error.retryAfter} seconds.`;
  }
  return WORDS[error.code] ?? error.message ?? 'Something went wrong. Try again.';
}

/** One API call; resolves with the JSON body (null for 204), rejects with an ApiError. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'Coffer cannot be reached. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  const data = json ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    const e = data?.error ?? {};
    const error = new ApiError(res.status, e.code ?? `http_${res.status}`,
      e.message ?? `The server answered ${res.status}.`, res.headers.get('retry-after'));
    if (res.status === 401 && e.code !== 'totp_required' && !path.startsWith('/v1/auth/')) onSignedOut();
    throw error;
  }
  return data;
}

/** A listing's query string. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
