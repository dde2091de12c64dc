// Headless Chromium for the sandbox's browser logins: Debian's /usr/bin/chromium (or $CHROMIUM)
// driven by playwright-core (no browser download), a fresh profile every time, removed afterwards,
// and no network but loopback (there is none anyway: the flags stop Chromium's own background
// connections, which this machine would refuse).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

// withPage runs fn(page) in a fresh headless Chromium whose actions time out after timeoutMs, and
// returns what fn returns; the browser and its profile are gone afterwards, whatever happened.
export async function withPage(timeoutMs, fn) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'oauth2mail-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    // the development pages @import web fonts: fail non-loopback requests at once instead of waiting
    await context.route((u) => !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname), (r) => r.abort());
    const page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(timeoutMs);
    return await fn(page);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
