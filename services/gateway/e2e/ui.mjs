// Coffer's web app end to end, in Debian's Chromium driven by playwright-core, against a real
// mesh (gateway, every service, Postgres, the embedded store, clamd) that dev/tests/web_ui.rs
// started. Environment: COFFER_URL (the gateway), COFFER_SHOTS (where screenshots go),
// CHROMIUM (the browser; /usr/bin/chromium by default).
//
// It fails on any console error or CSP violation in any page, and if the app ever asks
// GET /v1/files/{id} while a verdict is awaited: verdicts must arrive on /v1/events.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.COFFER_URL;
const SHOTS = process.env.COFFER_SHOTS ?? 'shots';
const EXE = process.env.CHROMIUM ?? '/usr/bin/chromium';
assert.ok(BASE, 'COFFER_URL names the gateway');
fs.mkdirSync(SHOTS, { recursive: true });

const OWNER = { org: 'Acme Legal', email: 'owner@acme.example', password: 'correct battery staple vault 2026' };
const MEMBER = { email: 'member@acme.example', password: 'purple gravel lantern river 77' };
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
// The clean file: big enough that the upload's progress shows between 0 and 100 %.
const CLEAN_LINES = 180000;
const cleanText = () => {
  let s = '';
  for (let i = 0; i < CLEAN_LINES; i += 1) s += `Coffer end-to-end clean line ${String(i).padStart(6, '0')} of the notes.\n`;
  return s;
};
const CLEAN = Buffer.from(cleanText());

let page;
const problems = [];
const fetchedFiles = [];
const requests = [];
const started = Date.now();
const step = async (name, fn) => {
  const t = Date.now();
  process.stdout.write(`• ${name} … `);
  try {
    await fn();
  } catch (e) {
    console.log('FAILED');
    // What the page showed, for whoever reads the log.
    await page?.screenshot({ path: path.join(SHOTS, 'failure.png') }).catch(() => {});
    console.log(`page text:\n${await page?.locator('body').innerText().catch(() => '?')}`);
    console.log(`problems so far: ${JSON.stringify(problems)}`);
    throw e;
  }
  console.log(`ok (${Date.now() - t} ms)`);
};

/** Watches a page: console errors, uncaught exceptions, CSP violations, polling of a file. */
function watch(page, label) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // Chromium logs each 4xx answer to fetch/EventSource as "Failed to load resource"; the app
    // meets 401 on its first load (no session yet) and on a login that needs its code, 403/404
    // on a share page asking for its password, 409 for the name taken below. Those are
    // answers, not errors of the page.
    const url = msg.location()?.url ?? '';
    const api = /^https:\/\/[^/]+\/(v1|s)\//.test(url);
    if (api && /^Failed to load resource: the server responded with a status of (401|403|404|409)/.test(text)) return;
    // The store's refusal the test provokes below.
    if (/X-Amz-Signature/.test(url) && /status of 403/.test(text)) return;
    problems.push(`${label}: console error: ${text}`);
  });
  page.on('pageerror', (e) => problems.push(`${label}: uncaught: ${e.message}`));
  page.on('dialog', (d) => { problems.push(`${label}: a script opened a dialog: ${d.message()}`); d.dismiss(); });
  page.on('request', async (req) => {
    requests.push({ method: req.method(), url: req.url(), referer: req.headers().referer });
    if (req.method() === 'PUT' && process.env.DEBUG_PUT) console.log('PUT headers', await req.allHeaders());
    const url = new URL(req.url());
    if (req.method() === 'GET' && /^\/v1\/files\/[0-9a-f-]{36}$/.test(url.pathname)) fetchedFiles.push(url.pathname);
  });
}

async function addViolationReporter(context) {
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) for a base32 secret, at time step `step`. */
function totp(secret, step) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', key).update(msg).digest();
  const off = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}
const nowStep = () => Math.floor(Date.now() / 30000);

async function shoot(page, name) {
  await page.evaluate(() => document.getElementById('status')?.classList.remove('shown'));
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 1280 ? 800 : 844 });
    // Nothing sticks out sideways: the layout fits the width.
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= width, `${name} at ${width} px is ${wide} px wide`);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: false });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

const browser = await chromium.launch({
  executablePath: EXE,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
// The mesh's certificate comes from its own throwaway CA.
const contextOptions = { ignoreHTTPSErrors: true, acceptDownloads: true, viewport: { width: 1280, height: 800 } };
const context = await browser.newContext(contextOptions);
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
await addViolationReporter(context);
page = await context.newPage();
watch(page, 'app');
page.setDefaultTimeout(20000);

// The first load: what it transfers (compressed) and when it is ready to use.
let firstLoad;
await step('first load: size and time to interactive', async () => {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  // (A new context's cache is empty; turning the cache off would make Chromium add
  // Cache-Control to every request, uploads included, which the store would keep.)
  let transferred = 0;
  cdp.on('Network.loadingFinished', (e) => { transferred += e.encodedDataLength; });
  const t0 = Date.now();
  await page.goto(BASE);
  await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
  const interactive = Date.now() - t0;
  await page.waitForLoadState('networkidle');
  await cdp.detach();
  firstLoad = { transferred_bytes: transferred, interactive_ms: interactive };
  assert.ok(transferred < 150 * 1024, `first load transferred ${transferred} bytes`);
});

await step('sign up (and land signed in)', async () => {
  await page.getByRole('link', { name: 'Create an organisation' }).click();
  await page.getByLabel('Organisation name').fill(OWNER.org);
  await page.getByLabel('Your email').fill(OWNER.email);
  await page.getByLabel('Password').fill(OWNER.password);
  await page.getByRole('button', { name: 'Create and sign in' }).click();
  await page.getByRole('heading', { name: 'Files', exact: true }).waitFor();
  await page.getByText('This folder is empty').waitFor();
  await page.getByText(`${OWNER.email} · owner`).waitFor();
});

await step('log out and log in with the keyboard only; no secret within the page\'s reach', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
  // The email field has the focus; Tab to the password; Enter submits.
  await page.keyboard.type(OWNER.email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(OWNER.password);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Files', exact: true }).waitFor();
  // The new screen has the focus: Tab reaches its first control, Shift+Tab goes back to the
  // header; the focused control shows a visible outline.
  await page.waitForFunction(() => document.activeElement.id === 'main');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => ({ text: document.activeElement.textContent, outline: getComputedStyle(document.activeElement).outlineStyle }));
  assert.deepEqual(focused, { text: 'Upload files', outline: 'solid' });
  await page.keyboard.press('Shift+Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Sign out');
  const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }));
  assert.deepEqual(stored, { local: 0, session: 0, cookie: '' }, 'no token in storage; the session cookie is HttpOnly');
});

await step('first load of a signed-in user (the files screen): size and time to interactive', async () => {
  const signedIn = await browser.newContext({ ...contextOptions, storageState: await context.storageState() });
  const p = await signedIn.newPage();
  watch(p, 'signed-in load');
  const cdp = await signedIn.newCDPSession(p);
  await cdp.send('Network.enable');
  let transferred = 0;
  cdp.on('Network.loadingFinished', (e) => { transferred += e.encodedDataLength; });
  const t0 = Date.now();
  await p.goto(BASE);
  await p.getByText('This folder is empty').waitFor();
  const interactive = Date.now() - t0;
  await p.waitForLoadState('networkidle');
  // (The event stream stays open and is not counted: Chromium reports a response's size when it
  // ends; an idle stream sends only keep-alive comments.)
  firstLoad.signed_in = { transferred_bytes: transferred, interactive_ms: interactive };
  assert.ok(transferred < 150 * 1024, `the signed-in first load transferred ${transferred} bytes`);
  await signedIn.close();
});

const row = (name) => page.locator('tbody tr').filter({ has: page.getByText(name, { exact: true }) });

await step('create a folder and open it', async () => {
  for (const name of ['Contracts', 'Archive']) {
    await page.getByRole('button', { name: 'New folder' }).click();
    await page.getByLabel('Folder name').fill(name);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('link', { name, exact: true }).waitFor();
  }
  await page.getByRole('link', { name: 'Contracts', exact: true }).click();
  await page.getByRole('heading', { name: 'Contracts' }).waitFor();
  await page.getByRole('navigation', { name: 'Breadcrumbs' }).getByRole('link', { name: 'All files', exact: true }).waitFor();
});

await step('upload two files by drag and drop; progress shows; verdicts arrive live', async () => {
  // Observe every state the upload list shows, from inside the page.
  await page.evaluate(() => {
    window.uploadStates = [];
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('.uploads .state')) window.uploadStates.push(el.textContent);
    }).observe(document.querySelector('.uploads'), { subtree: true, childList: true, characterData: true });
  });
  // A slow uplink, so that the progress (and its screenshot) can be seen.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 3 * 1024 * 1024,
  });
  const before = fetchedFiles.length;
  const requestsBefore = requests.length;
  const drop = await page.evaluateHandle(({ lines, eicar }) => {
    let text = '';
    for (let i = 0; i < lines; i += 1) text += `Coffer end-to-end clean line ${String(i).padStart(6, '0')} of the notes.\n`;
    const dt = new DataTransfer();
    dt.items.add(new File([text], 'notes.txt', { type: 'text/plain' }));
    dt.items.add(new File([eicar], 'eicar.com.txt', { type: 'text/plain' }));
    return dt;
  }, { lines: CLEAN_LINES, eicar: EICAR });
  await page.dispatchEvent('section.drop', 'dragover', { dataTransfer: drop });
  await page.dispatchEvent('section.drop', 'drop', { dataTransfer: drop });
  const notes = page.locator('li[data-upload="notes.txt"]');
  await notes.getByText(/Uploading .* \(\d+%\)/).waitFor();
  await shoot(page, 'upload-in-progress');
  const eicar = page.locator('li[data-upload="eicar.com.txt"]');
  await eicar.getByText('Quarantined: malware found').waitFor({ timeout: 60000 });
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await cdp.detach();
  await notes.getByText('Clean: ready to download.').waitFor({ timeout: 60000 });
  const states = await page.evaluate(() => window.uploadStates);
  const percents = states.map((s) => /\((\d+)%\)/.exec(s)?.[1]).filter(Boolean).map(Number);
  assert.ok(percents.some((p) => p > 0 && p < 100), `progress between 0 and 100 %: ${[...new Set(percents)]}`);
  assert.ok(states.some((s) => s.startsWith('Scanning')), 'the scanning state was shown');
  // The list shows the verdicts too, without a reload; nothing asked for a file's state.
  await row('notes.txt').getByText('Clean').waitFor();
  await row('eicar.com.txt').getByText('Quarantined · Malware found').waitFor();
  assert.equal(await row('eicar.com.txt').getByRole('button', { name: 'Download' }).count(), 0);
  assert.equal(await row('eicar.com.txt').getByRole('button', { name: 'Share' }).count(), 0);
  assert.equal(await row('eicar.com.txt').getByRole('button', { name: 'Release' }).count(), 1);
  assert.deepEqual(fetchedFiles.slice(before), [], 'verdicts come from /v1/events, not by polling');
  const during = requests.slice(requestsBefore).map((r) => `${r.method} ${new URL(r.url).pathname}`);
  assert.deepEqual(during.filter((r) => r.includes('/children')), [], 'nor by listing the folder again');
  assert.ok(requests.some((r) => new URL(r.url).pathname === '/v1/events'), 'the page listens on /v1/events');
  await shoot(page, 'quarantined');
});

await step('an upload whose name is taken says so next to the file; a cancelled one leaves nothing', async () => {
  const drop = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['again'], 'notes.txt', { type: 'text/plain' }));
    return dt;
  });
  await page.dispatchEvent('section.drop', 'drop', { dataTransfer: drop });
  await page.locator('li[data-upload="notes.txt"]').last()
    .getByText('Something with this name is already here. Choose another name.').waitFor();

  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
  const big = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(4 * 1024 * 1024)], 'big.bin', { type: 'application/octet-stream' }));
    return dt;
  });
  await page.dispatchEvent('section.drop', 'drop', { dataTransfer: big });
  const item = page.locator('li[data-upload="big.bin"]');
  await item.getByText(/Uploading .* \(\d+%\)/).waitFor();
  await item.getByRole('button', { name: 'Cancel' }).click();
  await item.getByText('Cancelled.').waitFor();
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await cdp.detach();
  // Gone from the folder, and from the trash: it never had bytes to keep.
  await page.reload();
  await row('notes.txt').waitFor();
  assert.equal(await row('big.bin').count(), 0);
  const trash = await (await page.request.get(`${BASE}/v1/trash`)).json();
  assert.deepEqual(trash.files.map((f) => f.name), []);
});

await step('the file picker uploads; the store refusing and the quota full are said in words', async () => {
  await page.locator('input[type="file"]').setInputFiles({ name: 'picked.txt', mimeType: 'text/plain', buffer: Buffer.from('picked by hand\n') });
  await page.locator('li[data-upload="picked.txt"]').getByText('Clean: ready to download.').waitFor({ timeout: 60000 });
  await row('picked.txt').getByText('Clean').waitFor();

  // The store refuses a PUT that lost a signed header on the way (a real refusal, by the store).
  await page.route(/X-Amz-Signature/, (route) => {
    const headers = { ...route.request().headers() };
    delete headers['x-amz-server-side-encryption'];
    return route.continue({ headers });
  });
  const tampered = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['refused'], 'refused.txt', { type: 'text/plain' }));
    return dt;
  });
  await page.dispatchEvent('section.drop', 'drop', { dataTransfer: tampered });
  await page.locator('li[data-upload="refused.txt"]').getByText(/^The storage refused the upload/).waitFor();
  await page.unrouteAll();
  assert.equal(await row('refused.txt').count(), 0);

  // The quota: two unfinished 4.9 GB uploads reserve most of the 10 GB; a 1 GB file no longer fits.
  const me = await (await page.request.get(`${BASE}/v1/me`)).json();
  const headers = { 'x-csrf-token': me.csrf_token };
  const reserved = [];
  for (const name of ['r1.bin', 'r2.bin']) {
    const res = await page.request.post(`${BASE}/v1/files`, { headers, data: { name, size: 4.9e9, content_type: 'application/octet-stream' } });
    assert.equal(res.status(), 201);
    reserved.push((await res.json()).file.id);
  }
  const huge = await page.evaluateHandle(() => {
    const mib = new Blob([new Uint8Array(1 << 20)]);
    const dt = new DataTransfer();
    dt.items.add(new File(Array(1024).fill(mib), 'huge.iso', { type: 'application/octet-stream' }));
    return dt;
  });
  await page.dispatchEvent('section.drop', 'drop', { dataTransfer: huge });
  await page.locator('li[data-upload="huge.iso"]').getByText("Your organisation's storage is full").waitFor();
  for (const id of reserved) {
    assert.equal((await page.request.delete(`${BASE}/v1/files/${id}`, { headers })).status(), 204);
    assert.equal((await page.request.delete(`${BASE}/v1/files/${id}/purge`, { headers })).status(), 204);
  }
});

await step('a file above the multipart threshold goes up in parts, with progress, and comes back whole', async () => {
  const chunkText = () => {
    const line = 'Coffer multipart test: the quick brown fox jumps over the lazy dog.\n';
    let text = line.repeat(Math.floor((1 << 20) / line.length));
    return text + '#'.repeat((1 << 20) - text.length);
  };
  const MIB_COUNT = 66; // above the 64 MiB threshold of `coffer-dev up`
  const expected = Buffer.from(chunkText().repeat(MIB_COUNT));
  const before = requests.length;
  const drop = await page.evaluateHandle(({ text, count }) => {
    const chunk = new Blob([text]);
    const dt = new DataTransfer();
    dt.items.add(new File(Array(count).fill(chunk), 'large.log', { type: 'text/plain' }));
    return dt;
  }, { text: chunkText(), count: MIB_COUNT });
  await page.dispatchEvent('section.drop', 'drop', { dataTransfer: drop });
  const item = page.locator('li[data-upload="large.log"]');
  await item.getByText('Clean: ready to download.').waitFor({ timeout: 120000 });
  const asked = requests.slice(before).map((r) => `${r.method} ${new URL(r.url).pathname}`);
  assert.ok(asked.some((r) => /^POST \/v1\/files\/[0-9a-f-]{36}\/parts$/.test(r)), 'part URLs were asked for');
  assert.ok(asked.filter((r) => r.startsWith('PUT ')).length >= 5, `the parts were PUT: ${asked.filter((r) => r.startsWith('PUT ')).length}`);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row('large.log').getByRole('button', { name: 'Download' }).click(),
  ]);
  const got = fs.readFileSync(await download.path());
  assert.ok(got.equals(expected), `downloaded ${got.length} bytes, uploaded ${expected.length}`);
});

await step('an admin releases a quarantined file after confirming', async () => {
  await row('eicar.com.txt').getByRole('button', { name: 'Release' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByText('Releasing it lets everyone in your organisation download and share it').waitFor();
  await dlg.getByRole('button', { name: 'Release' }).click();
  await row('eicar.com.txt').getByText('Released · Malware found').waitFor();
  await row('eicar.com.txt').getByRole('button', { name: 'Download' }).waitFor();
});

await step('download the clean file; the bytes are the ones uploaded', async () => {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row('notes.txt').getByRole('button', { name: 'Download' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'notes.txt');
  const got = fs.readFileSync(await download.path());
  assert.ok(got.equals(CLEAN), `downloaded ${got.length} bytes, uploaded ${CLEAN.length}`);
});

await step('rename, move, trash, restore, purge', async () => {
  await row('notes.txt').getByRole('button', { name: 'Rename' }).click();
  await page.getByLabel('New name').fill('notes-final.txt');
  await page.getByRole('button', { name: 'Save' }).click();
  await row('notes-final.txt').waitFor();

  await row('notes-final.txt').getByRole('button', { name: 'Move' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('button', { name: 'All files' }).click();
  await dlg.getByRole('button', { name: 'Archive' }).click();
  await dlg.getByRole('button', { name: 'Move here' }).click();
  await row('notes-final.txt').waitFor({ state: 'detached' });
  await page.getByRole('link', { name: 'All files', exact: true }).click();
  await page.getByRole('link', { name: 'Archive', exact: true }).click();
  await page.getByRole('heading', { name: 'Archive' }).waitFor();
  await row('notes-final.txt').waitFor();

  await row('notes-final.txt').getByRole('button', { name: 'Trash' }).click();
  await page.getByText('This folder is empty').waitFor();
  await page.getByRole('link', { name: 'Trash', exact: true }).click();
  await page.getByRole('heading', { name: 'Trash' }).waitFor();
  await row('notes-final.txt').getByText(/^Purged on /).waitFor();
  await row('notes-final.txt').getByRole('button', { name: 'Restore' }).click();
  await row('notes-final.txt').waitFor({ state: 'detached' });
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await page.getByRole('link', { name: 'Archive', exact: true }).click();
  await row('notes-final.txt').waitFor();

  // The quarantined file: trashed, then purged for good from the trash.
  await page.getByRole('link', { name: 'All files', exact: true }).click();
  await page.getByRole('link', { name: 'Contracts', exact: true }).click();
  await row('eicar.com.txt').getByRole('button', { name: 'Trash' }).click();
  await row('eicar.com.txt').waitFor({ state: 'detached' });
  await page.getByRole('link', { name: 'Trash', exact: true }).click();
  await row('eicar.com.txt').getByRole('button', { name: 'Purge' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Purge' }).click();
  await page.getByText('The trash is empty.').waitFor();
});

let shareUrl;
await step('share with a password; copy the link', async () => {
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await page.getByRole('link', { name: 'Archive', exact: true }).click();
  await row('notes-final.txt').getByRole('button', { name: 'Share' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByText('No live links.').waitFor();
  await dlg.getByLabel('Expires after').selectOption({ label: '7 days' });
  await dlg.getByLabel('Password (optional)').fill('share pass 123');
  await dlg.getByLabel('Most downloads (optional)').fill('3');
  await dlg.getByRole('button', { name: 'Create link' }).click();
  const link = dlg.getByLabel('Link (shown once: copy it now)');
  await link.waitFor();
  shareUrl = await link.inputValue();
  assert.match(shareUrl, /\/s\/[A-Za-z0-9_-]+$/);
  await dlg.getByText(/0 of 3 downloads · password/).waitFor();
  await shoot(page, 'share-dialog');
  // Esc closes the dialog, and the focus goes back to the button that opened it.
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Share notes-final.txt');
});

await step('open the link in a cookie-less browser; the password form; the bytes', async () => {
  const stranger = await browser.newContext(contextOptions);
  await addViolationReporter(stranger);
  const p = await stranger.newPage();
  watch(p, 'share page');
  // The link names the public URL (localhost); the same gateway.
  await p.goto(shareUrl);
  await p.getByText('This file is protected by a password').waitFor();
  assert.equal(await p.locator('script').count(), 0);
  await p.getByLabel('Password').fill('wrong guess');
  await p.getByRole('button', { name: 'Download' }).click();
  await p.getByText('That password is not right').waitFor();
  await p.getByLabel('Password').fill('share pass 123');
  const [download] = await Promise.all([
    p.waitForEvent('download'),
    p.getByRole('button', { name: 'Download' }).click(),
  ]);
  const got = fs.readFileSync(await download.path());
  assert.ok(got.equals(CLEAN), 'the shared bytes are the uploaded ones');
  const seen = requests.filter((r) => r.url.includes('/s/') || r.url.includes('X-Amz-Signature'));
  assert.ok(seen.some((r) => r.url.includes('X-Amz-Signature')), 'the store was asked');
  for (const r of seen) {
    assert.ok(!r.url.includes('share%20pass') && !r.url.includes('share pass') && !r.url.includes('password='), `no password in ${r.url}`);
    if (r.url.includes('X-Amz-Signature')) assert.ok(!r.referer, `the store sees no referrer: ${JSON.stringify(r)}`);
  }

  // Revoked in the owner's dialog, the link shows a page that says so.
  await row('notes-final.txt').getByRole('button', { name: 'Share' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByText(/1 of 3 downloads · password/).waitFor();
  await dlg.getByRole('button', { name: 'Revoke' }).click();
  await dlg.getByText('No live links.').waitFor();
  await dlg.getByRole('button', { name: 'Close' }).click();
  await p.goto(shareUrl);
  await p.getByText('This link does not work').waitFor();
  await stranger.close();
});

await step('a link without a password: the page offers a button; opening it spends nothing', async () => {
  const me = await (await page.request.get(`${BASE}/v1/me`)).json();
  const id = await row('notes-final.txt').getAttribute('data-file-id');
  const share = await (await page.request.post(`${BASE}/v1/files/${id}/shares`, {
    headers: { 'x-csrf-token': me.csrf_token }, data: { expires_in_seconds: 600, max_downloads: 1 },
  })).json();
  const stranger = await browser.newContext(contextOptions);
  await addViolationReporter(stranger);
  const p = await stranger.newPage();
  watch(p, 'share page (no password)');
  // A link preview, then the person: neither look spends the single download.
  await p.goto(share.url);
  await p.goto(share.url);
  await p.getByText('The file is ready').waitFor();
  assert.equal(await p.getByLabel('Password').count(), 0);
  const [download] = await Promise.all([
    p.waitForEvent('download'),
    p.getByRole('button', { name: 'Download' }).click(),
  ]);
  assert.ok(fs.readFileSync(await download.path()).equals(CLEAN));
  await p.goto(share.url);
  await p.getByText('This link does not work').waitFor();
  await stranger.close();
});

await step('hostile names stay text', async () => {
  const hostile = ['<img src=x onerror=alert(1)>', 'javascript:alert(2)'];
  for (const name of hostile) {
    await page.getByRole('button', { name: 'New folder' }).click();
    await page.getByLabel('Folder name').fill(name);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('link', { name, exact: true }).waitFor();
    // The link goes to the folder, whatever its name says.
    assert.match(await page.getByRole('link', { name, exact: true }).getAttribute('href'), /^#\/files\/[0-9a-f-]{36}$/);
  }
  assert.equal(await page.locator('main img').count(), 0);
  const drop = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['x'], '"><svg onload=alert(3)>.txt', { type: 'text/plain' }));
    return dt;
  });
  await page.dispatchEvent('section.drop', 'drop', { dataTransfer: drop });
  await row('"><svg onload=alert(3)>.txt').getByText('Clean').waitFor({ timeout: 60000 });
  assert.equal(await page.locator('main svg').count(), 0);
});

await step('folders: rename, move into another, trash (shown in the trash)', async () => {
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await page.getByRole('button', { name: 'New folder' }).click();
  await page.getByLabel('Folder name').fill('Many');
  await page.getByRole('button', { name: 'Save' }).click();
  await row('Many').getByRole('button', { name: 'Rename' }).click();
  await page.getByLabel('New name').fill('Many old');
  await page.getByRole('button', { name: 'Save' }).click();
  await row('Many old').getByRole('button', { name: 'Move' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('button', { name: 'Contracts' }).click();
  await dlg.getByRole('button', { name: 'Move here' }).click();
  await row('Many old').waitFor({ state: 'detached' });
  await page.getByRole('link', { name: 'Contracts', exact: true }).click();
  await row('Many old').getByRole('button', { name: 'Trash' }).click();
  await row('Many old').waitFor({ state: 'detached' });
  await page.getByRole('link', { name: 'Trash', exact: true }).click();
  await row('Many old').getByText('Folder: its files are listed below').waitFor();
});

await step('change the password: the other session ends, this one stays', async () => {
  const other = await browser.newContext(contextOptions);
  const login = await other.request.post(`${BASE}/v1/auth/login`, { data: { email: OWNER.email, password: OWNER.password } });
  assert.equal(login.status(), 200);
  assert.equal((await other.request.get(`${BASE}/v1/me`)).status(), 200);
  await page.getByRole('link', { name: 'Account', exact: true }).click();
  const next = 'correct battery staple vault 2027';
  await page.getByLabel('Current password').fill(OWNER.password);
  await page.getByLabel('New password', { exact: true }).fill(next);
  await page.getByLabel('New password again').fill(next);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed. Every other session of yours was signed out.').waitFor();
  OWNER.password = next;
  assert.equal((await other.request.get(`${BASE}/v1/me`)).status(), 401);
  assert.equal((await page.request.get(`${BASE}/v1/me`)).status(), 200);
  await other.close();
});

await step('a large folder pages: 100 at a time, then "Load more"; sorting by name flips', async () => {
  const me = await (await page.request.get(`${BASE}/v1/me`)).json();
  const headers = { 'x-csrf-token': me.csrf_token, 'content-type': 'application/json' };
  const many = await (await page.request.post(`${BASE}/v1/folders`, { headers, data: { name: 'Many' } })).json();
  assert.ok(many.id, JSON.stringify(many));
  for (let i = 0; i < 105; i += 1) {
    const res = await page.request.post(`${BASE}/v1/folders`, { headers, data: { name: `Sub ${String(i).padStart(3, '0')}`, parent_id: many.id } });
    assert.equal(res.status(), 201);
  }
  await page.goto(`${BASE}/#/files/${many.id}`);
  await page.getByRole('heading', { name: 'Many' }).waitFor();
  await page.locator('tr[data-folder-id]').nth(99).waitFor();
  assert.equal(await page.locator('tr[data-folder-id]').count(), 100);
  await page.getByRole('button', { name: 'Load more' }).click();
  await page.locator('tr[data-folder-id]').nth(104).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Load more' }).isVisible(), false);
  await page.getByRole('button', { name: /^Name/ }).click();
  assert.equal(await page.locator('tr[data-folder-id] a').first().textContent(), 'Sub 104');
});

await step('dark mode follows the system', async () => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await page.getByRole('link', { name: 'Archive', exact: true }).click();
  await row('notes-final.txt').waitFor();
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(18, 20, 23)');
  await page.screenshot({ path: path.join(SHOTS, 'files-dark-1280.png') });
  await page.emulateMedia({ colorScheme: 'light' });
});

let secret;
await step('enrol TOTP, log out, log in with the code', async () => {
  await page.getByRole('link', { name: 'Account', exact: true }).click();
  await page.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
  await page.getByRole('img', { name: 'QR code for your authenticator app' }).waitFor();
  secret = (await page.locator('#totp-secret').textContent()).trim();
  const confirmStep = nowStep();
  await page.getByLabel('Code from the app').fill(totp(secret, confirmStep));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('On: signing in asks for a code').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Email').fill(OWNER.email);
  await page.getByLabel('Password').fill(OWNER.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByLabel('Code from your authenticator app').waitFor();
  // A code is good once: wait for the next one.
  while (nowStep() === confirmStep) await new Promise((r) => setTimeout(r, 500));
  await page.getByLabel('Code from your authenticator app').fill(totp(secret, nowStep()));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Files', exact: true }).waitFor();
});

await step('create an API key (shown once), use it, revoke it', async () => {
  await page.getByRole('link', { name: 'Account', exact: true }).click();
  await page.getByLabel('Name', { exact: true }).fill('e2e script');
  await page.getByLabel('Read files (files:read)').check();
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = await page.getByLabel('Your new key (shown only now: copy it and keep it safe)').inputValue();
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByText('Copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  await page.locator('tr[data-key-id]').filter({ hasText: 'e2e script' }).waitFor();
  const call = () => page.request.get(`${BASE}/v1/folders/root/children`, { headers: { authorization: `Bearer ${key}`, cookie: '' } });
  assert.equal((await call()).status(), 200);
  await page.locator('tr[data-key-id]').filter({ hasText: 'e2e script' }).getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
  await page.getByText('No API keys.').waitFor();
  assert.equal((await call()).status(), 401);
});

await step('admin: add a member; verify the audit chain; see the actions just done', async () => {
  await page.getByRole('link', { name: 'Admin', exact: true }).click();
  await page.getByLabel('Email').fill(MEMBER.email);
  await page.getByLabel('First password').fill(MEMBER.password);
  await page.getByLabel('Role').selectOption('member');
  await page.getByRole('button', { name: 'Add member' }).click();
  await page.locator(`tr[data-member="${MEMBER.email}"]`).waitFor();
  // Another, removed at once after confirming.
  await page.getByLabel('Email').fill('temp@acme.example');
  await page.getByLabel('First password').fill('silver comet harbour 9182');
  await page.getByRole('button', { name: 'Add member' }).click();
  await page.locator('tr[data-member="temp@acme.example"]').getByRole('button', { name: 'Remove' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  await page.locator('tr[data-member="temp@acme.example"]').waitFor({ state: 'detached' });

  await page.getByRole('link', { name: 'Audit log', exact: true }).click();
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await page.getByText(/^Chain verified: \d+ events, unbroken\.$/).waitFor();
  await page.locator('#audit-verify code').waitFor();
  assert.match(await page.locator('#audit-verify code').textContent(), /^[0-9a-f]{64}$/);
  // Each action just done is there; the filter shows only the chosen one.
  for (const action of ['auth.login', 'folder.create', 'file.upload', 'file.download', 'file.quarantined', 'file.release', 'file.rename', 'file.move', 'file.delete', 'file.restore', 'file.purge', 'share.create', 'share.download', 'apikey.create', 'apikey.revoke', 'member.add', 'member.remove', 'auth.password_change', 'folder.rename', 'folder.move', 'folder.delete', 'share.revoke']) {
    await page.getByLabel('Action').selectOption(action);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator(`tbody tr[data-action="${action}"]`).first().waitFor();
    const shown = await page.locator('tbody tr[data-action]').evaluateAll((rows) => rows.map((r) => r.dataset.action));
    assert.ok(shown.every((a) => a === action), `filtered by ${action}: ${shown}`);
  }
  // From tomorrow: nothing yet. From today: everything.
  const day = (offset) => new Date(Date.now() + offset * 86400000).toLocaleDateString('en-CA');
  await page.getByLabel('Action').selectOption('');
  await page.getByLabel('From').fill(day(1));
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByText('No events match.').waitFor();
  await page.getByLabel('From').fill(day(0));
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.locator('tbody tr[data-action="member.add"]').first().waitFor();
  // Paged: 50 at a time, then more.
  assert.equal(await page.locator('tbody tr[data-action]').count(), 50);
  await page.getByRole('button', { name: 'Load more' }).click();
  await page.locator('tbody tr[data-action]').nth(50).waitFor();
  // The export downloads the chain: one JSON object per line, with hashes.
  const [exported] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export (NDJSON)' }).click(),
  ]);
  const lines = fs.readFileSync(await exported.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length > 50, `${lines.length} lines exported`);
  await page.getByLabel('From').fill('');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.locator('tbody tr[data-action]').first().waitFor();
  await shoot(page, 'audit');
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await page.getByRole('link', { name: 'Archive', exact: true }).click();
  await row('notes-final.txt').waitFor();
  await shoot(page, 'files');
});

await step('admin: set the webhook (secret shown once), see its URL, delete it', async () => {
  await page.getByRole('link', { name: 'Admin', exact: true }).click();
  await page.getByRole('link', { name: 'Webhook', exact: true }).click();
  await page.getByText('No webhook: scan results are not sent anywhere.').waitFor();
  await page.getByLabel('Endpoint URL (https)').fill('https://hooks.example.com/coffer');
  await page.getByRole('button', { name: 'Set webhook' }).click();
  const secretField = page.getByLabel(/^Signing secret/);
  assert.match(await secretField.inputValue(), /^whsec_/);
  await page.getByText('https://hooks.example.com/coffer').waitFor();
  await page.getByRole('button', { name: 'Delete webhook' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No webhook: scan results are not sent anywhere.').waitFor();
});

await step('admin: the NSFW policy; a flagged image stays downloadable and says so; quarantine holds one', async () => {
  await page.getByRole('link', { name: 'Admin', exact: true }).click();
  await page.getByRole('link', { name: 'Scanning', exact: true }).click();
  await page.getByText(/^Model: /).waitFor();
  assert.equal(await page.getByLabel(/^Flag/).isChecked(), true, 'flag is the default');
  assert.equal(await page.getByLabel('Explicit photos').inputValue(), '0.7');
  // Thresholds so low that any picture reaches one: what they are for.
  for (const label of ['Explicit photos', 'Explicit drawings', 'Suggestive (swimwear, lingerie)']) {
    await page.getByLabel(label).fill('0.0001');
  }
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved: images are now flagged when they reach a threshold.').waitFor();
  await shoot(page, 'admin-scanning');
  // An image drawn in the page, dropped on the files screen.
  const upload = async (name) => {
    await page.getByRole('link', { name: 'Files', exact: true }).click();
    await page.getByRole('heading', { name: 'Files', exact: true }).waitFor();
    const drop = await page.evaluateHandle(async (fileName) => {
      const canvas = document.createElement('canvas');
      canvas.width = 320; canvas.height = 240;
      const g = canvas.getContext('2d');
      const grad = g.createLinearGradient(0, 0, 320, 240);
      grad.addColorStop(0, '#d9a07a'); grad.addColorStop(1, '#3a5fcd');
      g.fillStyle = grad; g.fillRect(0, 0, 320, 240);
      g.fillStyle = '#f2c9a0'; g.beginPath(); g.arc(110, 100, 60, 0, 7); g.fill();
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
      const dt = new DataTransfer();
      dt.items.add(new File([blob], fileName, { type: 'image/png' }));
      return dt;
    }, name);
    await page.dispatchEvent('section.drop', 'dragover', { dataTransfer: drop });
    await page.dispatchEvent('section.drop', 'drop', { dataTransfer: drop });
    return page.locator(`li[data-upload="${name}"]`);
  };
  const flagged = await upload('beach.png');
  await flagged.getByText('Flagged as not safe for work: your organisation lets it be downloaded.').waitFor({ timeout: 60000 });
  await row('beach.png').getByText('Flagged · Not safe for work').waitFor();
  assert.equal(await row('beach.png').getByRole('button', { name: 'Download' }).count(), 1);
  // quarantine: the same picture is held.
  await page.getByRole('link', { name: 'Admin', exact: true }).click();
  await page.getByRole('link', { name: 'Scanning', exact: true }).click();
  await page.getByLabel(/^Quarantine/).check();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved: images are now quarantined when they reach a threshold.').waitFor();
  const held = await upload('beach-2.png');
  await held.getByText('Quarantined: not safe for work. It cannot be downloaded or shared.').waitFor({ timeout: 60000 });
  await row('beach-2.png').getByText('Quarantined · Not safe for work').waitFor();
  assert.equal(await row('beach-2.png').getByRole('button', { name: 'Download' }).count(), 0);
  // Back to the defaults for the steps that follow.
  await page.getByRole('link', { name: 'Admin', exact: true }).click();
  await page.getByRole('link', { name: 'Scanning', exact: true }).click();
  await page.getByLabel(/^Flag/).check();
  await page.getByLabel('Explicit photos').fill('0.7');
  await page.getByLabel('Explicit drawings').fill('0.7');
  await page.getByLabel('Suggestive (swimwear, lingerie)').fill('0.9');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved: images are now flagged when they reach a threshold.').waitFor();
});

await step('a member does not see the admin screens', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Email').fill(MEMBER.email);
  await page.getByLabel('Password').fill(MEMBER.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByText(`${MEMBER.email} · member`).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Admin', exact: true }).count(), 0);
  await page.goto(`${BASE}/#/admin/audit`);
  await page.getByText('Only owners and admins of your organisation see this page.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Verify chain' }).count(), 0);
  // The API agrees.
  assert.equal((await page.request.get(`${BASE}/v1/audit`)).status(), 403);
});

await step('an owner deletes an organisation (30 days to undo) and restores it from the sign-in page', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('link', { name: 'Create an organisation' }).click();
  const other = { org: 'Short Lived', email: 'founder@short.example', password: 'orange tunnel basket 4411' };
  await page.getByLabel('Organisation name').fill(other.org);
  await page.getByLabel('Your email').fill(other.email);
  await page.getByLabel('Password').fill(other.password);
  await page.getByRole('button', { name: 'Create and sign in' }).click();
  await page.getByRole('link', { name: 'Admin', exact: true }).click();
  await page.getByRole('link', { name: 'Organisation', exact: true }).click();
  await page.getByText(/kept for a grace period \(30 days unless your operator changed it/).waitFor();
  await page.getByLabel('Type delete to confirm').fill('delete');
  await page.getByRole('button', { name: 'Delete the organisation' }).click();
  await page.getByText(/Its files are purged on .*; until then an owner can restore it/).waitFor();
  await page.goto(`${BASE}/#/login`);
  await page.getByLabel('Email').fill(other.email);
  await page.getByLabel('Password').fill(other.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByText('The email or password is not right').waitFor();
  await page.getByRole('link', { name: 'Restore a deleted organisation' }).click();
  await page.getByLabel('Owner email').fill(other.email);
  await page.getByLabel('Password').fill(other.password);
  await page.getByRole('button', { name: 'Restore' }).click();
  await page.getByText('Organisation restored').waitFor();
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByLabel('Email').fill(other.email);
  await page.getByLabel('Password').fill(other.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByText(`${other.email} · owner`).waitFor();
});

await browser.close();
assert.deepEqual(problems, [], 'no console errors, uncaught exceptions or CSP violations');
fs.writeFileSync(path.join(SHOTS, 'first-load.json'), `${JSON.stringify(firstLoad)}\n`);
console.log(`first load: ${firstLoad.transferred_bytes} bytes transferred, interactive after ${firstLoad.interactive_ms} ms; signed in: ${firstLoad.signed_in.transferred_bytes} bytes, ${firstLoad.signed_in.interactive_ms} ms`);
console.log(`all steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SHOTS}`);
