'use strict';
// Drives Debian's Chromium (headless, through playwright-core) through the fixture
// server's login, API calls, websocket and OAuth flows with recordHar, and writes
// OUT/chromium-login.har plus its MANIFEST.json entry.
//
//   node capture.js [OUT_DIR]   (default: ../../crates/cli/tests/fixtures/har)

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { start } = require('./server');
const manifest = require('./manifest');

const OUT = path.resolve(process.argv[2] || path.join(__dirname, '../../crates/cli/tests/fixtures/har'));
const FIXTURE = 'chromium-login.har';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const MAX_BYTES = 60 * 1024;

async function waitStatus(page, expected) {
  await page.waitForFunction((want) => document.getElementById('status')?.textContent === want, expected, { timeout: 15000 });
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const harPath = path.join(OUT, FIXTURE);
  const srv = await start();
  const s = srv.secrets;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let version = browser.version();
  try {
    const context = await browser.newContext({ recordHar: { path: harPath, content: 'embed', mode: 'full' } });
    const page = await context.newPage();

    // 1. login form -> 302 /app with cookies -> app page runs the API calls + websocket
    await page.goto(`${srv.url}/`);
    await page.fill('input[name=username]', s.username);
    await page.fill('input[name=password]', s.password);
    await Promise.all([page.waitForURL(`${srv.url}/app`), page.click('button[type=submit]')]);
    await waitStatus(page, 'apis-done');

    // 2. OAuth authorization code + PKCE: authorize -> 302 callback -> POST /oauth/token
    await Promise.all([page.waitForURL(/\/oauth\/callback/), page.click('#connect')]);
    await waitStatus(page, 'oauth-done');

    // 3. implicit flow: authorize -> 302 /oauth/implicit#access_token=...&id_token=...
    const q = new URLSearchParams({
      client_id: s.oauthClientId,
      redirect_uri: `${srv.url}/oauth/implicit`,
      response_type: 'token id_token',
      scope: 'openid profile',
      state: s.oauthState,
      nonce: s.oauthNonce,
    });
    await page.goto(`${srv.url}/oauth/authorize?${q}`);
    await waitStatus(page, 'implicit-done');

    await context.close(); // flushes the HAR
  } finally {
    await browser.close();
    await srv.close();
  }

  const text = fs.readFileSync(harPath, 'utf8');
  const size = Buffer.byteLength(text);
  if (size > MAX_BYTES) console.warn(`  warning: ${FIXTURE} is ${size} bytes (> ${MAX_BYTES})`);

  const i = srv.issued;
  const planted = [
    { kind: 'password', value: s.password, where: 'request postData (form-urlencoded text and params) of POST /login' },
    { kind: 'csrf-token', value: s.csrf, where: 'hidden input in the HTML of GET /; postData field csrf of POST /login' },
    { kind: 'session-cookie', value: s.sessionId, where: 'Set-Cookie session_id (response headers and cookies) of the 302 POST /login; Cookie header and cookies of every later request' },
    { kind: 'csrf-token', value: s.csrfCookie, where: 'Set-Cookie csrftoken of the 302 POST /login; Cookie header of later requests' },
    { kind: 'client-secret', value: s.clientSecret, where: 'inline script of GET /app; JSON postData of POST /api/token' },
    { kind: 'jwt', value: i.accessJwt, where: 'response body access_token of POST /api/token; request header Authorization: Bearer of GET /api/me' },
    { kind: 'refresh-token', value: s.refreshToken, where: 'response body refresh_token of POST /api/token' },
    { kind: 'access-token-query', value: s.opaqueAccessToken, where: 'URL query access_token (url and queryString) of GET /api/repos; inline script of GET /app' },
    { kind: 'github-pat', value: s.githubPat, where: 'response body deploy.github_token of GET /api/repos' },
    { kind: 'aws-access-key', value: s.awsAccessKeyId, where: 'response body deploy.aws_access_key_id of GET /api/repos' },
    { kind: 'aws-secret-key', value: s.awsSecretAccessKey, where: 'response body deploy.aws_secret_access_key of GET /api/repos (JSON inside the escaped content.text)' },
    { kind: 'okta', value: s.oktaToken, where: 'request header Authorization: SSWS of GET /api/okta; inline script of GET /app' },
    { kind: 'basic-auth', value: s.basicCredential, where: 'request header Authorization: Basic of GET /api/basic (base64 of svc-deploy:<password>)' },
    { kind: 'password', value: s.basicPassword, where: 'inside the Basic credential of GET /api/basic (base64-decoded) and in plain text in the inline script of GET /app' },
    { kind: 'api-key-header', value: s.apiKeyHeader, where: 'request header X-API-Key of GET /api/key; inline script of GET /app' },
    { kind: 'api-key', value: s.uploadApiKey, where: 'multipart/form-data field api_key in postData of POST /api/upload; inline script of GET /app' },
    { kind: 'slack-token', value: s.slackBotToken, where: 'response body slack.bot_token of GET /api/integrations' },
    { kind: 'stripe-key', value: s.stripeLiveKey, where: 'response body (JavaScript) of GET /static/billing.js' },
    { kind: 'websocket-token', value: s.wsToken, where: 'websocket message sent on /ws (and inline script of GET /app)' },
    { kind: 'pkce-verifier', value: s.codeVerifier, where: 'postData code_verifier of POST /oauth/token; inline script of GET /app' },
    { kind: 'client-secret', value: s.oauthClientSecret, where: 'postData client_secret of POST /oauth/token; inline script of GET /oauth/callback' },
    { kind: 'oauth-code', value: s.authCode, where: 'Location header / redirectURL of the 302 GET /oauth/authorize; URL query code of GET /oauth/callback; postData code of POST /oauth/token' },
    { kind: 'bearer-token', value: s.oauthAccessToken, where: 'response body access_token of POST /oauth/token' },
    { kind: 'jwt', value: i.idToken, where: 'response body id_token of POST /oauth/token' },
    { kind: 'refresh-token', value: s.oauthRefreshToken, where: 'response body refresh_token of POST /oauth/token' },
    { kind: 'bearer-token', value: s.implicitAccessToken, where: 'URL fragment access_token in the Location header / redirectURL of the 302 GET /oauth/authorize (response_type=token id_token); request header Authorization: Bearer of GET /oauth/userinfo', optional: true },
    { kind: 'jwt', value: i.implicitIdToken, where: 'URL fragment id_token in the Location header / redirectURL of the 302 GET /oauth/authorize (response_type=token id_token)', optional: true },
  ];
  const secrets = manifest.check(FIXTURE, text, planted);
  manifest.update(OUT, FIXTURE, secrets, { source: `Chromium ${version} headless via playwright-core recordHar (content: embed, mode: full)` });
  console.log(`wrote ${harPath} (${size} bytes, ${JSON.parse(text).log.entries.length} entries, ${secrets.length} planted secrets)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
