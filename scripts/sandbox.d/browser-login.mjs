#!/usr/bin/env node
// Play the user in a real browser: open an authorization URL in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core; no browser download), type the login name on the
// OAuth server's login page, approve its consent page, and wait until the browser is redirected to
// the loopback address in the request (the listener of the program under test gets the code).
//
// Usage: browser-login.mjs --url AUTHORIZE_URL LOGIN
// Env:   CHROMIUM (default /usr/bin/chromium), BROWSER_TIMEOUT_MS (default 20000), VERBOSE=1
// Prints one JSON line {"redirected_to": ..., "ms": ...} (the code is masked); exit 0 on success.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

const T0 = performance.now();
const ms = () => Math.round(performance.now() - T0);
const log = (...a) => { if (process.env.VERBOSE) console.error(`[browser-login +${ms()}ms]`, ...a); };
const TIMEOUT = Number(process.env.BROWSER_TIMEOUT_MS || 20000);
const MAX_PAGES = 6; // login + consent (+ a possible error page); more means something loops

const [flag, authorizeUrl, login] = process.argv.slice(2);
if (flag !== '--url' || !authorizeUrl || !login) {
  console.error('usage: browser-login.mjs --url AUTHORIZE_URL LOGIN');
  process.exit(2);
}
const server = new URL(authorizeUrl).origin;
const isLoopbackRedirect = (u) => /^(127\.0\.0\.1|localhost|\[::1\])$/.test(u.hostname) && u.origin !== server;

// A fresh profile every time, removed afterwards; no network but loopback (there is none anyway:
// the flags stop Chromium's own background connections, which this machine would refuse).
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'oauth2mail-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
log('browser launched');
let finalUrl;
try {
  // the development pages @import web fonts: fail non-loopback requests at once instead of waiting
  await context.route((u) => !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname), (r) => r.abort());
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(authorizeUrl);
  for (let i = 0; i < MAX_PAGES && !isLoopbackRedirect(new URL(page.url())); i += 1) {
    if ((await page.title()).startsWith('oops')) {
      throw new Error(`OAuth server error page: ${(await page.locator('body').innerText()).replace(/\s+/g, ' ')}`);
    }
    const prompt = await page.locator('input[name="prompt"]').first().getAttribute('value');
    log('page', prompt, page.url());
    // capture the URL before clicking: waitForURL(u => u.href !== page.url()) would compare with the new one
    const before = page.url();
    const navigation = page.waitForURL((u) => u.href !== before, { waitUntil: 'commit' });
    if (prompt === 'login') {
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'sandbox');
    } else if (prompt !== 'consent') {
      throw new Error(`unexpected page (prompt ${prompt}) at ${page.url()}`);
    }
    await page.click('button[type="submit"]');
    await navigation;
    await page.waitForLoadState('domcontentloaded');
  }
  finalUrl = page.url();
  log('final url', finalUrl);
  if (!isLoopbackRedirect(new URL(finalUrl))) throw new Error(`no loopback redirect; browser is at ${finalUrl}`);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ redirected_to: finalUrl.replace(/code=[^&]+/, 'code=...'), ms: ms() }));
