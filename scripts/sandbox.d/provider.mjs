#!/usr/bin/env node
// The sandbox's OAuth 2.0 / OpenID Connect server: panva's oidc-provider (npm, a certified OpenID
// server; not ours), configured like a mail provider's identity platform. In-memory, 127.0.0.1 only.
//
// What it offers (see scripts/sandbox for how it is started):
//   * public native client SANDBOX_CLIENT_ID ("oauth2mail"): PKCE S256, loopback redirects on any
//     port for 127.0.0.1 and localhost (bare and "/"), authorization code, device code, refresh
//     tokens (offline_access) that rotate on every use; and its twin "oauth2mail-short" whose
//     access tokens live OP_SHORT_AT_TTL seconds
//   * public client "<OP_CLIENT_ID>-https" registered, like some mail apps, with one https redirect
//     on localhost: https://localhost:OP_HTTPS_REDIRECT_PORT (oauth2mail's redirect_uri over TLS)
//   * confidential client "dovecot" that may only introspect ACCESS tokens (RFC 7662) - used by
//     Dovecot's Lua passdb on every login, so expiry and revocation are seen at once
//   * revocation (RFC 7009) and the library's development login/consent pages: the login name
//     typed there becomes the token subject, which is the mailbox name (user@example.test, ...)
//   * /_sandbox/revoke?sub=LOGIN revokes every grant of LOGIN (what "remove app access" does in a
//     real account portal) and /_sandbox/stats counts token events per subject (for tests)
//
// Arguments: --sandbox STATE_DIR is ignored here; it marks the process as that sandbox's (for stop).
// Env:
//   OP_PORT                 listen port (issuer http://127.0.0.1:$OP_PORT)          required
//   OP_AT_TTL               access-token lifetime in seconds                         default 3600
//   OP_RT_TTL               refresh-token and grant lifetime in seconds              default 86400
//   OP_CLIENT_ID            id of the public native client                           default oauth2mail
//   OP_SHORT_AT_TTL         access-token lifetime of the second public client "<OP_CLIENT_ID>-short",
//                           same in all else: forces refreshes without long waits   default 60
//   OP_DOVECOT_SECRET       client secret of the "dovecot" introspection client      required
//   OP_DEVICE_INTERVAL      "interval" announced with device codes (RFC 8628 3.2)     default 5
//   OP_HTTPS_REDIRECT_PORT  port of the https client's redirect        default OP_PORT - 80 + 443
import * as http from 'node:http';
import Provider from 'oidc-provider';

const PORT = Number(process.env.OP_PORT);
const DOVECOT_SECRET = process.env.OP_DOVECOT_SECRET;
if (!PORT || !DOVECOT_SECRET) {
  console.error('provider.mjs: OP_PORT and OP_DOVECOT_SECRET are required');
  process.exit(2);
}
const ISSUER = `http://127.0.0.1:${PORT}`;
const AT_TTL = Number(process.env.OP_AT_TTL || 3600);
const RT_TTL = Number(process.env.OP_RT_TTL || 86400);
const CLIENT_ID = process.env.OP_CLIENT_ID || 'oauth2mail';
const SHORT_CLIENT_ID = `${CLIENT_ID}-short`;
const SHORT_AT_TTL = Number(process.env.OP_SHORT_AT_TTL || 60);
const DEVICE_CODE_TTL = 600; // seconds a user has to enter a device code (RFC 8628 expires_in)
const AUTH_CODE_TTL = 60; // seconds between the loopback redirect and the code exchange
// oidc-provider announces no polling interval, which means 5 s (RFC 8628 3.2); tests want less
const DEVICE_INTERVAL = Number(process.env.OP_DEVICE_INTERVAL || 5);

// Loopback redirect URIs (RFC 8252 section 7.3). For application_type "native" oidc-provider ignores
// the PORT of http loopback redirects, but compares the PATH as a string: "http://127.0.0.1:5555"
// (no path) and "http://127.0.0.1:5555/" are different, so register both forms for both hosts.
const LOOPBACK_REDIRECTS = ['127.0.0.1', 'localhost'].flatMap((h) => [`http://${h}`, `http://${h}/`]);

// oidc-provider refuses https on localhost for "native" clients ("claimed HTTPS URIs"), so the https
// client is a "web" one: public all the same (no secret, PKCE), but its redirect matches only
// exactly, port included. The default port follows the sandbox's scheme: BASE + 443, as OP_PORT
// is BASE + 80.
const HTTPS_CLIENT_ID = `${CLIENT_ID}-https`;
const HTTPS_REDIRECT = `https://localhost:${Number(process.env.OP_HTTPS_REDIRECT_PORT || PORT - 80 + 443)}`;

// Mail scopes a client may ask for; unlisted scopes are silently dropped by oidc-provider.
const MAIL_SCOPES = [
  'mail',
  'https://outlook.office.com/IMAP.AccessAsUser.All',
  'https://outlook.office.com/POP.AccessAsUser.All',
  'https://outlook.office.com/SMTP.Send',
  'https://mail.google.com/',
];

const configuration = {
  clients: [
    ...[CLIENT_ID, SHORT_CLIENT_ID].map((id) => ({
      client_id: id,
      client_name: `${id} (sandbox)`,
      application_type: 'native', // enables loopback port variance and http loopback redirects
      token_endpoint_auth_method: 'none', // public client: no secret, PKCE instead
      redirect_uris: LOOPBACK_REDIRECTS,
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    })),
    {
      client_id: HTTPS_CLIENT_ID,
      client_name: `${HTTPS_CLIENT_ID} (sandbox)`,
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      redirect_uris: [HTTPS_REDIRECT],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
    },
    {
      client_id: 'dovecot',
      client_secret: DOVECOT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [],
      response_types: [],
      grant_types: [],
    },
  ],
  // sub == the login name typed into the development login page, e.g. user@example.test
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: sub, email_verified: true, preferred_username: sub };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
  scopes: ['openid', 'offline_access', 'email', 'profile', ...MAIL_SCOPES],
  // shows up in introspection answers: lets a resource server read "username" as well as "sub"
  async extraTokenClaims(ctx, token) {
    return token.accountId ? { username: token.accountId, email: token.accountId } : undefined;
  },
  features: {
    devInteractions: { enabled: true }, // built-in login (any name, any password) and consent pages
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // The default policy lets any confidential client introspect refresh tokens as "active", and
      // Dovecot sends no token_type_hint: a refresh token would then open a mailbox. Only access
      // tokens are shown to the dovecot client; a public client may only see its own tokens.
      async allowedPolicy(ctx, client, token) {
        if (client.clientId === 'dovecot') return token.kind === 'AccessToken';
        return client.clientAuthMethod !== 'none' || token.clientId === client.clientId;
      },
    },
  },
  pkce: { required: () => true }, // S256 is the only method oidc-provider 9 supports
  rotateRefreshToken: true, // every refresh returns a new refresh token and consumes the old one
  async issueRefreshToken(ctx, client, code) {
    return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
  },
  ttl: {
    AccessToken: (ctx, token, client) => (client?.clientId === SHORT_CLIENT_ID ? SHORT_AT_TTL : AT_TTL),
    AuthorizationCode: AUTH_CODE_TTL,
    DeviceCode: DEVICE_CODE_TTL,
    IdToken: AT_TTL,
    RefreshToken: RT_TTL,
    Grant: RT_TTL,
    Interaction: DEVICE_CODE_TTL,
    Session: RT_TTL,
  },
  cookies: { keys: ['oauth2mail-sandbox-cookie-key'] }, // local test server: a fixed key is fine
};

const provider = new Provider(ISSUER, configuration);

// oidc-provider drops offline_access from an authorization request (so: no refresh token) unless
// the request carries prompt=consent. Real mail clients send offline_access without it; add it.
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/auth'
    && String(ctx.query.scope || '').split(' ').includes('offline_access')) {
    const prompts = String(ctx.query.prompt || '').split(' ').filter(Boolean);
    if (!prompts.includes('consent') && !prompts.includes('none')) {
      ctx.query = { ...ctx.query, prompt: [...prompts, 'consent'].join(' ') };
    }
  }
  await next();
});

// announce the polling interval with every device code
provider.use(async (ctx, next) => {
  await next();
  if (ctx.method === 'POST' && ctx.path === '/device/auth' && ctx.status === 200 && ctx.body?.device_code) {
    ctx.body = { ...ctx.body, interval: DEVICE_INTERVAL };
  }
});

// ---- bookkeeping for the admin routes: grant ids and event counts per subject
const grantsBySub = new Map(); // sub -> Set(grantId)
const stats = new Map(); // sub -> { event: count }
const count = (sub, evt) => {
  const s = stats.get(sub ?? '-') ?? {};
  s[evt] = (s[evt] ?? 0) + 1;
  stats.set(sub ?? '-', s);
};
const out = (o) => console.log(JSON.stringify({ t: new Date().toISOString(), ...o }));
for (const evt of ['access_token.saved', 'refresh_token.saved', 'refresh_token.consumed', 'refresh_token.destroyed',
  'device_code.consumed', 'authorization_code.consumed']) {
  provider.on(evt, (token) => {
    if (token.grantId && token.accountId) {
      if (!grantsBySub.has(token.accountId)) grantsBySub.set(token.accountId, new Set());
      grantsBySub.get(token.accountId).add(token.grantId);
    }
    count(token.accountId, evt);
    out({ evt, sub: token.accountId, client: token.clientId, grant: token.grantId?.slice(0, 8) });
  });
}
// grant_type of each successful token request (refresh_token / device_code / authorization_code)
provider.on('grant.success', (ctx) => {
  const sub = ctx.oidc.entities.Account?.accountId ?? ctx.oidc.entities.Grant?.accountId;
  count(sub, `grant.success:${ctx.oidc.params.grant_type}`);
});
provider.on('grant.revoked', (ctx, grantId) => out({ evt: 'grant.revoked', grant: grantId?.slice(0, 8) }));
for (const evt of ['grant.error', 'introspection.error', 'revocation.error', 'authorization.error', 'server_error']) {
  provider.on(evt, (ctx, err) => {
    count(ctx.oidc?.entities?.Account?.accountId, evt);
    out({ evt, error: err.error || err.message, detail: err.error_detail, client: ctx.oidc?.client?.clientId });
  });
}

async function revokeSubject(sub) {
  const grants = [...(grantsBySub.get(sub) ?? [])];
  for (const grantId of grants) {
    await Promise.all([provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode]
      .map((model) => model.revokeByGrantId(grantId)));
    await provider.Grant.adapter.destroy(grantId);
    out({ evt: 'admin.revoked', sub, grant: grantId.slice(0, 8) });
  }
  grantsBySub.delete(sub);
  count(sub, 'admin.revoked');
  return grants.length;
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, ISSUER);
  const json = (code, body) => res.writeHead(code, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  if (url.pathname === '/_sandbox/revoke' && req.method === 'POST') {
    const sub = url.searchParams.get('sub');
    if (!sub) return json(400, { error: 'sub is required' });
    return json(200, { sub, revoked_grants: await revokeSubject(sub) });
  }
  if (url.pathname === '/_sandbox/stats' && req.method === 'GET') {
    return json(200, Object.fromEntries(stats));
  }
  return callback(req, res);
});
server.listen(PORT, '127.0.0.1', () => out({ evt: 'listening', issuer: ISSUER, at_ttl: AT_TTL, short_at_ttl: SHORT_AT_TTL, client_id: CLIENT_ID }));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });
