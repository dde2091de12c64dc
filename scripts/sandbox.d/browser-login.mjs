#!/usr/bin/env node
// Play the user in a real browser: open an authorization URL in headless Chromium (chromium.mjs),
// type the login name on the OAuth server's login page, approve its consent page, and wait until
// the browser is redirected to the loopback address in the request (the listener of the program
// under test gets the code).
//
// Usage: browser-login.mjs --url AUTHORIZE_URL LOGIN
// Env:   CHROMIUM (default /usr/bin/chromium), BROWSER_TIMEOUT_MS (default 20000), VERBOSE=1
// Prints one JSON line {"redirected_to": ..., "ms": ...} (the code is masked); exit 0 on success.
import { withPage } from './chromium.mjs';

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

const finalUrl = await withPage(TIMEOUT, async (page) => {
  log('browser launched');
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
  log('final url', page.url());
  if (!isLoopbackRedirect(new URL(page.url()))) throw new Error(`no loopback redirect; browser is at ${page.url()}`);
  return page.url();
});
console.log(JSON.stringify({ redirected_to: finalUrl.replace(/code=[^&]+/, 'code=...'), ms: ms() }));
