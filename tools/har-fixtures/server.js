'use strict';
// A small local web app that leaks FAKE secrets in every place a HAR can hold them.
// Node built-ins only; listens on 127.0.0.1 on a random free port.
//
//   node server.js          # prints the URL and serves until Ctrl-C
//   require('./server').start() -> { url, port, issued, secrets, close() }

const http = require('http');
const crypto = require('crypto');
const { makeSecrets, jwtFor } = require('./secrets');

const API_AUD = 'https://api.acme-fixtures.dev';

function parseCookies(header) {
  const out = {};
  for (const part of (header || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const esc = (v) => JSON.stringify(v).replace(/</g, '\\u003c');

function createApp(s) {
  const issued = {}; // JWTs, minted once on first use (iat = capture time)
  const accessJwt = () =>
    (issued.accessJwt ||= jwtFor(s, { sub: 'usr_alice_01HZX4', aud: API_AUD, extra: { scope: 'repos:read profile', client_id: s.clientId } }));
  const idToken = () =>
    (issued.idToken ||= jwtFor(s, { sub: 'usr_alice_01HZX4', aud: s.oauthClientId, nonce: s.oauthNonce, extra: { email: 'alice.nguyen@acme-fixtures.dev', email_verified: true } }));
  const implicitIdToken = () =>
    (issued.implicitIdToken ||= jwtFor(s, { sub: 'usr_alice_01HZX4', aud: `${s.oauthClientId}-implicit`, nonce: s.oauthNonce, extra: { at_hash: crypto.createHash('sha256').update(s.implicitAccessToken).digest('base64url').slice(0, 22) } }));

  function send(res, status, body, headers = {}) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    res.writeHead(status, { 'Content-Length': buf.length, 'Cache-Control': 'no-store', ...headers });
    res.end(buf);
  }
  const json = (res, status, obj, headers = {}) =>
    send(res, status, JSON.stringify(obj), { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  const html = (res, body, headers = {}) =>
    send(res, 200, `<!doctype html>\n<html><head><meta charset="utf-8"><title>Acme Console</title></head>\n<body>\n${body}\n</body></html>\n`, { 'Content-Type': 'text/html; charset=utf-8', ...headers });
  const redirect = (res, location, headers = {}) => send(res, 302, '', { Location: location, ...headers });
  const unauthorized = (res) => json(res, 401, { error: 'unauthorized' });

  const pages = {
    login: () => `<h1>Sign in</h1>
<form id="login" method="post" action="/login">
  <input type="hidden" name="csrf" value="${s.csrf}">
  <label>User <input name="username" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>
<script>
  // After login the /app page calls the APIs; here we only focus the form.
  document.querySelector('input[name=username]').focus();
</script>`,

    app: () => `<h1>Dashboard</h1>
<p id="status">loading</p>
<a id="connect" href="#">Connect GitHub (OAuth)</a>
<script src="/static/billing.js"></script>
<script>
const CLIENT_ID = ${esc(s.clientId)};
const CLIENT_SECRET = ${esc(s.clientSecret)}; // a confidential client in a browser: the bug the HAR shows
async function call(url, init) {
  const r = await fetch(url, init);
  await r.text(); // read every body: Playwright's HAR has no content.text for a body the page never read
  return r;
}
async function run() {
  const tok = await (await fetch('/api/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, grant_type: 'client_credentials' }),
  })).json();
  await call('/api/me', { headers: { Authorization: 'Bearer ' + tok.access_token } });
  await call('/api/repos?access_token=' + ${esc(s.opaqueAccessToken)} + '&page=1');
  await call('/api/okta', { headers: { Authorization: 'SSWS ' + ${esc(s.oktaToken)} } });
  await call('/api/basic', { headers: { Authorization: 'Basic ' + btoa(${esc(`${s.basicUser}:${s.basicPassword}`)}) } });
  await call('/api/key', { headers: { 'X-API-Key': ${esc(s.apiKeyHeader)} } });
  const fd = new FormData();
  fd.append('api_key', ${esc(s.uploadApiKey)});
  fd.append('file', new File(['id,name\\n1,widget\\n2,gadget\\n'], 'inventory.csv', { type: 'text/csv' }));
  // Serialise the form first: a FormData holding a File goes out as a blob, whose bytes
  // Chromium does not expose to DevTools, so the HAR would have no postData at all.
  const multipart = new Response(fd);
  await call('/api/upload', { method: 'POST', headers: { 'Content-Type': multipart.headers.get('Content-Type') }, body: await multipart.text() });
  await call('/api/integrations');
  await new Promise((resolve) => {
    const ws = new WebSocket('ws://' + location.host + '/ws');
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: ${esc(s.wsToken)} }));
    ws.onmessage = (e) => { if (JSON.parse(e.data).type === 'ready') { ws.close(); resolve(); } };
    ws.onerror = () => resolve();
    setTimeout(resolve, 3000);
  });
  sessionStorage.setItem('pkce_verifier', ${esc(s.codeVerifier)});
  document.getElementById('connect').href = '/oauth/authorize?' + new URLSearchParams({
    client_id: ${esc(s.oauthClientId)},
    redirect_uri: location.origin + '/oauth/callback',
    response_type: 'code',
    scope: 'openid profile repos',
    state: ${esc(s.oauthState)},
    nonce: ${esc(s.oauthNonce)},
    code_challenge: ${esc(s.codeChallenge)},
    code_challenge_method: 'S256',
  });
  document.getElementById('status').textContent = 'apis-done';
}
run().catch((e) => { document.getElementById('status').textContent = 'error: ' + e; });
</script>`,

    callback: () => `<h1>Connecting…</h1>
<p id="status">exchanging code</p>
<script>
(async () => {
  const q = new URLSearchParams(location.search);
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: q.get('code'),
    redirect_uri: location.origin + '/oauth/callback',
    client_id: ${esc(s.oauthClientId)},
    code_verifier: sessionStorage.getItem('pkce_verifier'),
    client_secret: ${esc(s.oauthClientSecret)},
  });
  const r = await fetch('/oauth/token', { method: 'POST', body });
  const t = await r.json();
  document.getElementById('status').textContent = t.access_token ? 'oauth-done' : 'oauth-failed';
})();
</script>`,

    implicit: () => `<h1>Signed in</h1>
<p id="status">reading fragment</p>
<script>
(async () => {
  const f = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, '', location.pathname); // what well-behaved SPAs do
  await (await fetch('/oauth/userinfo', { headers: { Authorization: 'Bearer ' + f.get('access_token') } })).json();
  document.getElementById('status').textContent = 'implicit-done';
})();
</script>`,
  };

  const billingJs = `// billing.js: bundled by mistake with the server-side key
(function () {
  var STRIPE_SECRET_KEY = "${s.stripeLiveKey}";
  var STRIPE_PUBLISHABLE_KEY = "pk_live_51${s.stripeLiveKey.slice(10, 24)}PUBLISHABLEonly";
  window.acmeBilling = { ready: true, mode: STRIPE_SECRET_KEY.slice(0, 7) };
})();
`;

  async function handle(req, res) {
    const url = new URL(req.url, 'http://127.0.0.1');
    const cookies = parseCookies(req.headers.cookie);
    const auth = req.headers.authorization || '';
    const loggedIn = cookies.session_id === s.sessionId;
    const route = `${req.method} ${url.pathname}`;

    switch (route) {
      case 'GET /':
        return html(res, pages.login());
      case 'GET /favicon.ico':
        return send(res, 204, '');
      case 'POST /login': {
        const form = new URLSearchParams((await readBody(req)).toString());
        if (form.get('csrf') !== s.csrf || form.get('username') !== s.username || form.get('password') !== s.password) {
          return redirect(res, '/?error=1');
        }
        return redirect(res, '/app', {
          'Set-Cookie': [
            `session_id=${s.sessionId}; HttpOnly; Secure; SameSite=Lax; Path=/`,
            `csrftoken=${s.csrfCookie}; Max-Age=31449600; SameSite=Lax; Path=/`,
            'theme=dark; Path=/',
          ],
        });
      }
      case 'GET /app':
        return loggedIn ? html(res, pages.app()) : redirect(res, '/');
      case 'GET /static/billing.js':
        return send(res, 200, billingJs, { 'Content-Type': 'application/javascript; charset=utf-8' });
      case 'POST /api/token': {
        const body = JSON.parse((await readBody(req)).toString() || '{}');
        if (body.client_id !== s.clientId || body.client_secret !== s.clientSecret) return unauthorized(res);
        return json(res, 200, { access_token: accessJwt(), refresh_token: s.refreshToken, token_type: 'Bearer', expires_in: 3600 });
      }
      case 'GET /api/me':
        if (auth !== `Bearer ${accessJwt()}`) return unauthorized(res);
        return json(res, 200, { id: 'usr_alice_01HZX4', username: s.username, name: 'Alice Nguyen', email: 'alice.nguyen@acme-fixtures.dev', roles: ['developer', 'billing-viewer'] });
      case 'GET /api/repos':
        if (url.searchParams.get('access_token') !== s.opaqueAccessToken) return unauthorized(res);
        return json(res, 200, {
          page: 1,
          repos: [
            { name: 'acme/payments', private: true, default_branch: 'main' },
            { name: 'acme/infra', private: true, default_branch: 'main' },
          ],
          // A debug field left in production: the kind of leak HAR scanning is for.
          deploy: {
            github_token: s.githubPat,
            aws_access_key_id: s.awsAccessKeyId,
            aws_secret_access_key: s.awsSecretAccessKey,
            region: 'eu-west-1',
          },
        });
      case 'GET /api/okta':
        if (auth !== `SSWS ${s.oktaToken}`) return unauthorized(res);
        return json(res, 200, [{ id: '00u1ab2cd3EF4gh5i6j7', status: 'ACTIVE', profile: { login: 'alice.nguyen@acme-fixtures.dev' } }]);
      case 'GET /api/basic':
        if (auth !== `Basic ${s.basicCredential}`) return unauthorized(res);
        return json(res, 200, { ok: true, user: s.basicUser });
      case 'GET /api/key':
        if (req.headers['x-api-key'] !== s.apiKeyHeader) return unauthorized(res);
        return json(res, 200, { ok: true, quota: { used: 12, limit: 1000 } });
      case 'POST /api/upload': {
        const body = (await readBody(req)).toString();
        if (!body.includes(s.uploadApiKey)) return unauthorized(res);
        return json(res, 201, { uploaded: 'inventory.csv', rows: 2 });
      }
      case 'GET /api/integrations':
        if (!loggedIn) return unauthorized(res);
        return json(res, 200, { slack: { team: 'acme', channel: '#deploys', bot_token: s.slackBotToken }, pagerduty: { enabled: false } });
      case 'GET /oauth/authorize': {
        const q = url.searchParams;
        if (q.get('client_id') !== s.oauthClientId || q.get('state') !== s.oauthState) return json(res, 400, { error: 'invalid_request' });
        if (q.get('response_type') === 'code') {
          return redirect(res, `/oauth/callback?${new URLSearchParams({ code: s.authCode, state: q.get('state') })}`);
        }
        // implicit flow: tokens in the fragment of the redirect
        const frag = new URLSearchParams({ access_token: s.implicitAccessToken, id_token: implicitIdToken(), token_type: 'bearer', expires_in: '3600', state: q.get('state') });
        return redirect(res, `/oauth/implicit#${frag}`);
      }
      case 'GET /oauth/callback':
        return html(res, pages.callback());
      case 'POST /oauth/token': {
        const form = new URLSearchParams((await readBody(req)).toString());
        const challenge = crypto.createHash('sha256').update(form.get('code_verifier') || '').digest('base64url');
        if (form.get('code') !== s.authCode || form.get('client_secret') !== s.oauthClientSecret || challenge !== s.codeChallenge) {
          return json(res, 400, { error: 'invalid_grant' });
        }
        return json(res, 200, { access_token: s.oauthAccessToken, token_type: 'Bearer', expires_in: 3600, scope: 'openid profile repos', id_token: idToken(), refresh_token: s.oauthRefreshToken });
      }
      case 'GET /oauth/implicit':
        return html(res, pages.implicit());
      case 'GET /oauth/userinfo':
        if (auth !== `Bearer ${s.implicitAccessToken}`) return unauthorized(res);
        return json(res, 200, { sub: 'usr_alice_01HZX4', preferred_username: s.username });
      default:
        return json(res, 404, { error: 'not_found', path: url.pathname });
    }
  }

  return { issued, handle };
}

// Minimal RFC 6455 server for GET /ws: text frames only, enough for one exchange.
function encodeFrame(text, opcode = 0x1) {
  const payload = Buffer.from(text);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]);
  return Buffer.concat([head, payload]);
}

function decodeFrames(buf) {
  const frames = [];
  let off = 0;
  while (buf.length - off >= 2) {
    const opcode = buf[off] & 0x0f;
    const masked = (buf[off + 1] & 0x80) !== 0;
    let len = buf[off + 1] & 0x7f;
    let p = off + 2;
    if (len === 126) { len = buf.readUInt16BE(p); p += 2; } else if (len === 127) { len = Number(buf.readBigUInt64BE(p)); p += 8; }
    const mask = masked ? buf.subarray(p, p + 4) : null;
    if (masked) p += 4;
    if (buf.length < p + len) break;
    const data = Buffer.from(buf.subarray(p, p + len));
    if (mask) for (let i = 0; i < data.length; i++) data[i] ^= mask[i % 4];
    frames.push({ opcode, data });
    off = p + len;
  }
  return { frames, rest: buf.subarray(off) };
}

function handleUpgrade(s, req, socket) {
  if (new URL(req.url, 'http://127.0.0.1').pathname !== '/ws' || !req.headers['sec-websocket-key']) {
    socket.destroy();
    return;
  }
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.write(encodeFrame(JSON.stringify({ type: 'hello', server: 'acme-realtime/1.4' })));
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    const { frames, rest } = decodeFrames(Buffer.concat([pending, chunk]));
    pending = rest;
    for (const f of frames) {
      if (f.opcode === 0x8) { socket.end(encodeFrame('', 0x8)); return; }
      if (f.opcode !== 0x1) continue;
      const msg = JSON.parse(f.data.toString());
      if (msg.type === 'auth' && msg.token === s.wsToken) socket.write(encodeFrame(JSON.stringify({ type: 'ready', channel: 'deploys' })));
      else socket.write(encodeFrame(JSON.stringify({ type: 'error', error: 'bad token' })));
    }
  });
  socket.on('error', () => {});
}

function start() {
  const secrets = makeSecrets();
  const app = createApp(secrets);
  const server = http.createServer((req, res) => {
    app.handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(String(e));
    });
  });
  server.on('upgrade', (req, socket) => handleUpgrade(secrets, req, socket));
  const sockets = new Set();
  server.on('connection', (sock) => { sockets.add(sock); sock.on('close', () => sockets.delete(sock)); });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        secrets,
        issued: app.issued,
        close: () => new Promise((r) => { for (const sock of sockets) sock.destroy(); server.close(() => r()); }),
      });
    });
  });
}

module.exports = { start };

if (require.main === module) {
  start().then(({ url }) => console.log(`fixture server on ${url} (Ctrl-C to stop)`));
}
