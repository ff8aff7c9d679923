'use strict';
// Writes HARs shaped like other exporters, from the same FAKE secrets as the server:
//   firefox-flavoured.har  Firefox DevTools "Save All As HAR" (HAR 1.2, pretty, two-space indent)
//   charles-flavoured.har  Charles Proxy export (no pages, one compact line, Charles quirks)
//   minimal.har            one entry, no secrets, for negative tests
// and their MANIFEST.json entries. No browser needed.
//
//   node flavours.js [OUT_DIR]   (default: ../../crates/cli/tests/fixtures/har)

const fs = require('fs');
const path = require('path');
const { makeSecrets, jwtFor } = require('./secrets');
const manifest = require('./manifest');

const OUT = path.resolve(process.argv[2] || path.join(__dirname, '../../crates/cli/tests/fixtures/har'));
const HOST = 'app.acme-fixtures.dev';
const ORIGIN = `https://${HOST}`;
const API = 'https://api.acme-fixtures.dev';
const SERVER_IP = '203.0.113.24'; // documentation range (RFC 5737); no traffic goes anywhere
const API_AUD = 'https://api.acme-fixtures.dev';

const pairs = (obj) => Object.entries(obj).map(([name, value]) => ({ name, value }));
const queryOf = (url) => [...new URL(url).searchParams].map(([name, value]) => ({ name, value }));
const bytes = (s) => Buffer.byteLength(s);

/** Date as HAR exporters write it with a zone offset: 2026-11-28T18:41:41.543+01:00. */
function harDate(ms, offsetMinutes) {
  const d = new Date(ms + offsetMinutes * 60000);
  const sign = offsetMinutes >= 0 ? '+' : '-';
  const abs = Math.abs(offsetMinutes);
  const off = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return d.toISOString().replace('Z', off);
}

function makeTokens(s, nowSec) {
  return {
    accessJwt: jwtFor(s, { sub: 'usr_alice_01HZX4', aud: API_AUD, extra: { scope: 'repos:read profile', client_id: s.clientId } }, nowSec),
    idToken: jwtFor(s, { sub: 'usr_alice_01HZX4', aud: s.oauthClientId, nonce: s.oauthNonce, extra: { email: 'alice.nguyen@acme-fixtures.dev', email_verified: true } }, nowSec),
    mobileJwt: jwtFor(s, { sub: 'usr_alice_01HZX4', aud: `${API_AUD}/mobile`, extra: { device: 'iPhone15,3', scope: 'feed offline_access' } }, nowSec),
  };
}

// ---------------------------------------------------------------------------------------
// Firefox
// ---------------------------------------------------------------------------------------

const FF_VERSION = '146.0';
const FF_UA = `Mozilla/5.0 (X11; Linux x86_64; rv:${FF_VERSION}) Gecko/20100101 Firefox/${FF_VERSION}`;

function firefox(s, t, startMs) {
  const pages = [];
  const entries = [];
  let clock = startMs;
  const cookieHeader = `session_id=${s.sessionId}; csrftoken=${s.csrfCookie}; theme=dark`;
  const cookies = [
    { name: 'session_id', value: s.sessionId },
    { name: 'csrftoken', value: s.csrfCookie },
    { name: 'theme', value: 'dark' },
  ];

  function page(url, onContentLoad, onLoad) {
    const id = `page_${pages.length + 1}`;
    pages.push({ id, pageTimings: { onContentLoad, onLoad }, startedDateTime: harDate(clock, 0), title: url });
    return id;
  }

  function entry(pageref, { method = 'GET', url, reqHeaders = {}, withCookies = true, postData, status = 200, statusText = 'OK', resHeaders = {}, resCookies = [], content, redirectURL = '', fresh = false }) {
    const timings = fresh
      ? { blocked: 1, dns: 0, connect: 38, ssl: 29, send: 0, wait: 41, receive: 1 }
      : { blocked: 0, dns: 0, connect: 0, ssl: 0, send: 0, wait: 18 + (entries.length % 5) * 7, receive: 1 };
    const headers = pairs({
      Host: HOST,
      'User-Agent': FF_UA,
      Accept: method === 'GET' && !url.includes('/api/') ? 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' : '*/*',
      'Accept-Language': 'en-US,en;q=0.5',
      'Accept-Encoding': 'gzip, deflate, br, zstd',
      ...reqHeaders,
      Connection: 'keep-alive',
      ...(withCookies ? { Cookie: cookieHeader } : {}),
      'Sec-Fetch-Dest': url.includes('/api/') || url.includes('/oauth/token') ? 'empty' : 'document',
      'Sec-Fetch-Mode': url.includes('/api/') || url.includes('/oauth/token') ? 'cors' : 'navigate',
      'Sec-Fetch-Site': 'same-origin',
    });
    const request = {
      bodySize: postData ? bytes(postData.text) : 0,
      method,
      url,
      httpVersion: 'HTTP/2',
      headers,
      cookies: withCookies ? cookies : [],
      queryString: queryOf(url),
      headersSize: headers.reduce((n, h) => n + h.name.length + h.value.length + 4, 0) + method.length + url.length,
    };
    if (postData) request.postData = postData;
    const rh = pairs({ 'content-type': content.mimeType, date: new Date(clock).toUTCString(), 'cache-control': 'no-store', ...resHeaders });
    const e = {
      startedDateTime: harDate(clock, 0),
      request,
      response: {
        status,
        statusText,
        httpVersion: 'HTTP/2',
        headers: rh,
        cookies: resCookies,
        content,
        redirectURL,
        headersSize: rh.reduce((n, h) => n + h.name.length + h.value.length + 4, 0),
        bodySize: content.size + 96,
      },
      cache: {},
      timings,
    };
    e.time = Object.values(timings).reduce((a, b) => (b === -1 ? a : a + b), 0);
    e._securityState = 'secure';
    e.serverIPAddress = SERVER_IP;
    e.connection = '443';
    e.pageref = pageref;
    entries.push(e);
    clock += e.time + 7;
    return e;
  }
  const jsonContent = (obj) => {
    const text = JSON.stringify(obj);
    return { mimeType: 'application/json', size: bytes(text), text };
  };
  const htmlContent = (text) => ({ mimeType: 'text/html', size: bytes(text), text });
  const form = (obj) => {
    const text = new URLSearchParams(obj).toString();
    return { mimeType: 'application/x-www-form-urlencoded', params: pairs(obj), text };
  };

  // login page and form post
  const p1 = page(`${ORIGIN}/`, 212, 240);
  entry(p1, {
    url: `${ORIGIN}/`,
    withCookies: false,
    fresh: true,
    content: htmlContent(`<!doctype html><html><body><form method="post" action="/login"><input type="hidden" name="csrf" value="${s.csrf}"><input name="username"><input name="password" type="password"><button>Sign in</button></form></body></html>`),
  });
  entry(p1, {
    method: 'POST',
    url: `${ORIGIN}/login`,
    withCookies: false,
    reqHeaders: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: ORIGIN, Referer: `${ORIGIN}/` },
    postData: form({ csrf: s.csrf, username: s.username, password: s.password }),
    status: 302,
    statusText: 'Found',
    resHeaders: {
      location: '/app',
      'set-cookie': `session_id=${s.sessionId}; HttpOnly; Secure; SameSite=Lax; Path=/\ncsrftoken=${s.csrfCookie}; Max-Age=31449600; SameSite=Lax; Path=/\ntheme=dark; Path=/`,
    },
    resCookies: cookies,
    content: { mimeType: 'text/plain', size: 0, text: '' },
    redirectURL: '/app',
  });

  // app page and its API calls
  const p2 = page(`${ORIGIN}/app`, 188, 305);
  entry(p2, { url: `${ORIGIN}/app`, reqHeaders: { Referer: `${ORIGIN}/` }, content: htmlContent('<!doctype html><html><body><h1>Dashboard</h1><script src="/static/app.js"></script></body></html>') });
  const api = { Referer: `${ORIGIN}/app`, 'X-XSRF-TOKEN': s.xsrfHeader };
  entry(p2, {
    method: 'POST',
    url: `${ORIGIN}/api/token`,
    reqHeaders: { ...api, 'Content-Type': 'application/json', Origin: ORIGIN },
    postData: { mimeType: 'application/json', params: [], text: JSON.stringify({ client_id: s.clientId, client_secret: s.clientSecret, grant_type: 'client_credentials' }) },
    content: jsonContent({ access_token: t.accessJwt, refresh_token: s.refreshToken, token_type: 'Bearer', expires_in: 3600 }),
  });
  entry(p2, { url: `${ORIGIN}/api/me`, reqHeaders: { ...api, Authorization: `Bearer ${t.accessJwt}` }, content: jsonContent({ id: 'usr_alice_01HZX4', username: s.username, name: 'Alice Nguyen' }) });
  entry(p2, {
    url: `${ORIGIN}/api/repos?access_token=${s.opaqueAccessToken}&page=1`,
    reqHeaders: api,
    content: jsonContent({ page: 1, repos: [{ name: 'acme/payments', private: true }], deploy: { github_token: s.githubPat, aws_access_key_id: s.awsAccessKeyId, aws_secret_access_key: s.awsSecretAccessKey, region: 'eu-west-1' } }),
  });
  entry(p2, { url: `${ORIGIN}/api/okta`, reqHeaders: { ...api, Authorization: `SSWS ${s.oktaToken}` }, content: jsonContent([{ id: '00u1ab2cd3EF4gh5i6j7', status: 'ACTIVE' }]) });
  entry(p2, { url: `${ORIGIN}/api/basic`, reqHeaders: { ...api, Authorization: `Basic ${s.basicCredential}` }, content: jsonContent({ ok: true, user: s.basicUser }) });
  entry(p2, { url: `${ORIGIN}/api/key`, reqHeaders: { ...api, 'X-API-Key': s.apiKeyHeader }, content: jsonContent({ ok: true }) });
  const boundary = '---------------------------31815442863427389011927153457';
  const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n${s.uploadApiKey}\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="inventory.csv"\r\nContent-Type: text/csv\r\n\r\nid,name\n1,widget\n2,gadget\n\r\n--${boundary}--\r\n`;
  entry(p2, {
    method: 'POST',
    url: `${ORIGIN}/api/upload`,
    reqHeaders: { ...api, 'Content-Type': `multipart/form-data; boundary=${boundary}`, Origin: ORIGIN },
    postData: { mimeType: `multipart/form-data; boundary=${boundary}`, params: [], text: multipart },
    status: 201,
    statusText: 'Created',
    content: jsonContent({ uploaded: 'inventory.csv', rows: 2 }),
  });
  // Firefox stores bodies it does not treat as text base64-encoded.
  const envFile = `# integrations.env (served by mistake)\nSLACK_BOT_TOKEN=${s.slackBotToken}\nSTRIPE_SECRET_KEY=${s.stripeLiveKey}\nLOG_LEVEL=info\n`;
  entry(p2, {
    url: `${ORIGIN}/static/integrations.env`,
    reqHeaders: { Referer: `${ORIGIN}/app` },
    content: { mimeType: 'application/octet-stream', size: bytes(envFile), encoding: 'base64', text: Buffer.from(envFile).toString('base64') },
  });

  // OAuth authorization code flow
  const authorize = `${ORIGIN}/oauth/authorize?${new URLSearchParams({ client_id: s.oauthClientId, redirect_uri: `${ORIGIN}/oauth/callback`, response_type: 'code', scope: 'openid profile repos', state: s.oauthState, nonce: s.oauthNonce, code_challenge: s.codeChallenge, code_challenge_method: 'S256' })}`;
  const callback = `/oauth/callback?${new URLSearchParams({ code: s.authCode, state: s.oauthState })}`;
  const p3 = page(authorize, 96, 131);
  entry(p3, { url: authorize, reqHeaders: { Referer: `${ORIGIN}/app` }, status: 302, statusText: 'Found', resHeaders: { location: callback }, content: { mimeType: 'text/plain', size: 0, text: '' }, redirectURL: callback });
  entry(p3, { url: `${ORIGIN}${callback}`, reqHeaders: { Referer: `${ORIGIN}/app` }, content: htmlContent('<!doctype html><html><body><p id="status">exchanging code</p><script src="/static/callback.js"></script></body></html>') });
  entry(p3, {
    method: 'POST',
    url: `${ORIGIN}/oauth/token`,
    reqHeaders: { 'Content-Type': 'application/x-www-form-urlencoded;charset=UTF-8', Origin: ORIGIN, Referer: `${ORIGIN}${callback}` },
    postData: form({ grant_type: 'authorization_code', code: s.authCode, redirect_uri: `${ORIGIN}/oauth/callback`, client_id: s.oauthClientId, code_verifier: s.codeVerifier, client_secret: s.oauthClientSecret }),
    content: jsonContent({ access_token: s.oauthAccessToken, token_type: 'Bearer', expires_in: 3600, scope: 'openid profile repos', id_token: t.idToken, refresh_token: s.oauthRefreshToken }),
  });

  const har = { log: { version: '1.2', creator: { name: 'Firefox', version: FF_VERSION }, browser: { name: 'Firefox', version: FF_VERSION }, pages, entries } };
  const planted = [
    { kind: 'csrf-token', value: s.csrf, where: 'hidden input in the HTML of GET /; postData (params and text) of POST /login' },
    { kind: 'password', value: s.password, where: 'postData params and form-urlencoded text of POST /login' },
    { kind: 'session-cookie', value: s.sessionId, where: 'set-cookie header and response cookies of the 302 POST /login; Cookie header and request cookies of later requests' },
    { kind: 'csrf-token', value: s.csrfCookie, where: 'set-cookie csrftoken of POST /login; Cookie header of later requests' },
    { kind: 'xsrf-header', value: s.xsrfHeader, where: 'request header X-XSRF-TOKEN of the /api/* requests' },
    { kind: 'client-secret', value: s.clientSecret, where: 'JSON postData text of POST /api/token' },
    { kind: 'jwt', value: t.accessJwt, where: 'response body access_token of POST /api/token; request header Authorization: Bearer of GET /api/me' },
    { kind: 'refresh-token', value: s.refreshToken, where: 'response body refresh_token of POST /api/token' },
    { kind: 'access-token-query', value: s.opaqueAccessToken, where: 'URL query access_token (url and queryString) of GET /api/repos' },
    { kind: 'github-pat', value: s.githubPat, where: 'response body deploy.github_token of GET /api/repos' },
    { kind: 'aws-access-key', value: s.awsAccessKeyId, where: 'response body deploy.aws_access_key_id of GET /api/repos' },
    { kind: 'aws-secret-key', value: s.awsSecretAccessKey, where: 'response body deploy.aws_secret_access_key of GET /api/repos' },
    { kind: 'okta', value: s.oktaToken, where: 'request header Authorization: SSWS of GET /api/okta' },
    { kind: 'basic-auth', value: s.basicCredential, where: 'request header Authorization: Basic of GET /api/basic' },
    { kind: 'api-key-header', value: s.apiKeyHeader, where: 'request header X-API-Key of GET /api/key' },
    { kind: 'api-key', value: s.uploadApiKey, where: 'multipart/form-data field api_key in postData text of POST /api/upload' },
    { kind: 'slack-token', value: s.slackBotToken, where: 'base64-encoded response body (content.encoding base64) of GET /static/integrations.env, only after decoding' },
    { kind: 'stripe-key', value: s.stripeLiveKey, where: 'base64-encoded response body (content.encoding base64) of GET /static/integrations.env, only after decoding' },
    { kind: 'oauth-code', value: s.authCode, where: 'location header and redirectURL of the 302 GET /oauth/authorize; URL query of GET /oauth/callback; postData code of POST /oauth/token' },
    { kind: 'pkce-verifier', value: s.codeVerifier, where: 'postData code_verifier of POST /oauth/token' },
    { kind: 'client-secret', value: s.oauthClientSecret, where: 'postData client_secret of POST /oauth/token' },
    { kind: 'bearer-token', value: s.oauthAccessToken, where: 'response body access_token of POST /oauth/token' },
    { kind: 'jwt', value: t.idToken, where: 'response body id_token of POST /oauth/token' },
    { kind: 'refresh-token', value: s.oauthRefreshToken, where: 'response body refresh_token of POST /oauth/token' },
  ];
  return { text: JSON.stringify(har, null, 2), planted, source: `synthetic, shaped as Firefox ${FF_VERSION} DevTools "Save All As HAR" (written by flavours.js, not a browser)` };
}

// ---------------------------------------------------------------------------------------
// Charles Proxy
// ---------------------------------------------------------------------------------------

const CHARLES_UA = 'AcmeMobile/4.12.0 (iPhone; iOS 18.1; Scale/3.00)';

function charles(s, t, startMs) {
  const entries = [];
  let clock = startMs;
  const OFFSET = 600; // +10:00, the proxy user's local zone

  function entry({ method = 'GET', url, reqHeaders = {}, cookies = [], postData, status = 200, statusText = 'OK', httpVersion = 'HTTP/1.1', resHeaders = {}, resCookies = [], content, extra = {}, comment }) {
    const headers = pairs({ Host: new URL(url).host, ...reqHeaders, 'User-Agent': CHARLES_UA, 'Accept-Language': 'en-AU;q=1', 'Accept-Encoding': 'br, gzip, deflate', Connection: 'keep-alive' });
    const request = { method, url, httpVersion, cookies, headers, queryString: queryOf(url) };
    if (postData) request.postData = postData;
    request.headersSize = headers.reduce((n, h) => n + h.name.length + h.value.length + 4, 0);
    request.bodySize = postData ? bytes(postData.text || new URLSearchParams(postData.params.map((p) => [p.name, p.value])).toString()) : 0;
    const rh = pairs({ Server: 'nginx', Date: new Date(clock).toUTCString(), 'Content-Type': content.mimeType, ...resHeaders, Connection: 'keep-alive' });
    const timings = { dns: entries.length ? -1 : 12, connect: entries.length ? -1 : 48, ssl: entries.length ? -1 : 31, send: 0, wait: 40 + (entries.length % 4) * 11, receive: 2 };
    const e = {
      startedDateTime: harDate(clock, OFFSET),
      time: Object.values(timings).reduce((a, b) => (b === -1 ? a : a + b), 0),
      request,
      response: {
        _charlesStatus: 'COMPLETE',
        status,
        statusText,
        httpVersion,
        cookies: resCookies,
        headers: rh,
        content,
        redirectURL: null,
        headersSize: rh.reduce((n, h) => n + h.name.length + h.value.length + 4, 0),
        bodySize: content.size,
      },
      serverIPAddress: SERVER_IP,
      cache: {},
      timings,
      ...extra,
    };
    if (comment !== undefined) e.comment = comment;
    entries.push(e);
    clock += e.time + 15;
    return e;
  }
  const jsonContent = (obj) => {
    const text = JSON.stringify(obj);
    return { size: bytes(text), mimeType: 'application/json; charset=utf-8', text };
  };

  const expires = new Date(startMs + 14 * 86400000).toISOString();
  entry({
    method: 'POST',
    url: `${API}/v2/auth/login`,
    reqHeaders: { 'Content-Type': 'application/json', Accept: 'application/json' },
    postData: { mimeType: 'application/json', text: JSON.stringify({ username: s.username, password: s.password, device_id: 'C0FFEE00-0B1D-4E6A-9F12-7D3C5E8A1B2F' }) },
    resHeaders: { 'Set-Cookie': `mobile_session=${s.mobileSessionId}; Expires=${new Date(expires).toUTCString()}; Path=/; Domain=.acme-fixtures.dev; Secure; HttpOnly` },
    resCookies: [{ name: 'mobile_session', value: s.mobileSessionId, path: '/', domain: '.acme-fixtures.dev', expires, httpOnly: true, secure: true, comment: '' }],
    content: jsonContent({ access_token: t.mobileJwt, token_type: 'Bearer', expires_in: 3600 }),
    comment: '',
  });
  // Charles writes the empty cookie left by a trailing "; " as {"name": "", "value": null}.
  const reqCookies = [{ name: 'mobile_session', value: s.mobileSessionId }, { name: '', value: null }];
  entry({
    url: `${API}/v2/me`,
    httpVersion: 'HTTP/2.0',
    statusText: null, // Charles has no reason phrase for HTTP/2
    cookies: reqCookies,
    reqHeaders: { Accept: 'application/json', Authorization: `Bearer ${t.mobileJwt}`, Cookie: `mobile_session=${s.mobileSessionId}; ` },
    content: jsonContent({ id: 'usr_alice_01HZX4', username: s.username }),
  });
  // Form bodies: Charles keeps only the parsed params, no text.
  entry({
    method: 'POST',
    url: `${API}/oauth/token`,
    cookies: reqCookies,
    reqHeaders: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    postData: { mimeType: 'application/x-www-form-urlencoded', params: pairs({ grant_type: 'refresh_token', refresh_token: s.oauthRefreshToken, client_id: s.oauthClientId, client_secret: s.oauthClientSecret }) },
    content: jsonContent({ access_token: s.oauthAccessToken, token_type: 'Bearer', expires_in: 3600, refresh_token: s.refreshToken }),
    comment: 'token refresh after 401',
  });
  // A response Charles saved base64-encoded.
  const reposBody = JSON.stringify({ repos: [{ name: 'acme/payments' }], ci: { github_token: s.githubPat } });
  entry({
    url: `${API}/v2/repos?page=1`,
    cookies: reqCookies,
    reqHeaders: { Accept: 'application/json', Authorization: `Bearer ${s.oauthAccessToken}` },
    content: { size: bytes(reposBody), mimeType: 'application/json', text: Buffer.from(reposBody).toString('base64'), encoding: 'base64' },
  });
  // Chrome DevTools extensions: _resourceType and an _initiator whose URL carries a token.
  const initiatorUrl = `${ORIGIN}/static/js/main.3f9c2a.js?token=${s.initiatorToken}`;
  entry({
    url: `${API}/v2/feed?limit=20`,
    cookies: reqCookies,
    reqHeaders: { Accept: 'application/json', Authorization: `Bearer ${s.oauthAccessToken}` },
    content: jsonContent({ items: [], next: null }),
    extra: { _resourceType: 'fetch', _initiator: { type: 'script', stack: { callFrames: [{ functionName: 'loadFeed', scriptId: '42', url: initiatorUrl, lineNumber: 0, columnNumber: 18734 }] } }, _priority: 'High' },
  });
  // A websocket with Chrome DevTools' _webSocketMessages (time in seconds, as Chrome writes it).
  const wsStart = clock / 1000;
  entry({
    url: 'wss://realtime.acme-fixtures.dev/v1/socket',
    status: 101,
    statusText: 'Switching Protocols',
    cookies: reqCookies,
    reqHeaders: { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', Origin: ORIGIN },
    resHeaders: { Upgrade: 'websocket', 'Sec-WebSocket-Accept': 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=' },
    content: { size: 0, mimeType: 'x-unknown', text: '' },
    extra: {
      _resourceType: 'websocket',
      _webSocketMessages: [
        { type: 'receive', time: wsStart + 0.012, opcode: 1, data: JSON.stringify({ type: 'hello', server: 'acme-realtime/1.4' }) },
        { type: 'send', time: wsStart + 0.031, opcode: 1, data: JSON.stringify({ type: 'auth', token: s.wsToken }) },
        { type: 'receive', time: wsStart + 0.047, opcode: 1, data: JSON.stringify({ type: 'ready', channel: 'deploys' }) },
        { type: 'send', time: wsStart + 5.002, opcode: 9, data: '' },
      ],
    },
  });
  // A plain-text credentials file: raw-text scanners find this one too.
  const awsCreds = `[default]\naws_access_key_id = ${s.awsAccessKeyId}\naws_secret_access_key = ${s.awsSecretAccessKey}\nregion = eu-west-1\n`;
  entry({
    url: `${API}/v2/debug/aws-credentials`,
    cookies: reqCookies,
    reqHeaders: { Accept: '*/*', 'X-API-Key': s.apiKeyHeader },
    content: { size: bytes(awsCreds), mimeType: 'text/plain', text: awsCreds },
    comment: '',
  });

  const har = { log: { version: '1.2', creator: { name: 'Charles Proxy', version: '5.0.2' }, entries } };
  const planted = [
    { kind: 'password', value: s.password, where: 'JSON postData text of POST /v2/auth/login' },
    { kind: 'session-cookie', value: s.mobileSessionId, where: 'Set-Cookie header and response cookie (with expires, httpOnly, secure) of POST /v2/auth/login; Cookie header and request cookies of later requests' },
    { kind: 'jwt', value: t.mobileJwt, where: 'response body access_token of POST /v2/auth/login; request header Authorization: Bearer of GET /v2/me' },
    { kind: 'refresh-token', value: s.oauthRefreshToken, where: 'postData params (no text) refresh_token of POST /oauth/token' },
    { kind: 'client-secret', value: s.oauthClientSecret, where: 'postData params (no text) client_secret of POST /oauth/token' },
    { kind: 'bearer-token', value: s.oauthAccessToken, where: 'response body access_token of POST /oauth/token; request header Authorization: Bearer of GET /v2/repos and GET /v2/feed' },
    { kind: 'refresh-token', value: s.refreshToken, where: 'response body refresh_token of POST /oauth/token' },
    { kind: 'github-pat', value: s.githubPat, where: 'base64-encoded response body (content.encoding base64) of GET /v2/repos, only after decoding' },
    { kind: 'url-token', value: s.initiatorToken, where: 'query token= of the script URL in _initiator.stack.callFrames[0].url of GET /v2/feed' },
    { kind: 'websocket-token', value: s.wsToken, where: '_webSocketMessages[1].data (type send) of the wss://realtime.acme-fixtures.dev/v1/socket entry' },
    { kind: 'api-key-header', value: s.apiKeyHeader, where: 'request header X-API-Key of GET /v2/debug/aws-credentials' },
    { kind: 'aws-access-key', value: s.awsAccessKeyId, where: 'text/plain response body (AWS credentials file) of GET /v2/debug/aws-credentials' },
    { kind: 'aws-secret-key', value: s.awsSecretAccessKey, where: 'text/plain response body (AWS credentials file) of GET /v2/debug/aws-credentials' },
  ];
  return { text: JSON.stringify(har), planted, source: 'synthetic, shaped as a Charles Proxy 5 HAR export (written by flavours.js, not a proxy)' };
}

// ---------------------------------------------------------------------------------------
// minimal
// ---------------------------------------------------------------------------------------

function minimal() {
  const har = {
    log: {
      version: '1.2',
      creator: { name: 'keywatch-har-fixtures', version: '1.0' },
      pages: [],
      entries: [
        {
          startedDateTime: '2025-01-01T00:00:00.000Z',
          time: 12,
          request: { method: 'GET', url: 'https://www.example.org/hello.txt', httpVersion: 'HTTP/1.1', cookies: [], headers: [{ name: 'Accept', value: 'text/plain' }], queryString: [], headersSize: -1, bodySize: 0 },
          response: { status: 200, statusText: 'OK', httpVersion: 'HTTP/1.1', cookies: [], headers: [{ name: 'Content-Type', value: 'text/plain' }], content: { size: 12, mimeType: 'text/plain', text: 'hello world\n' }, redirectURL: '', headersSize: -1, bodySize: 12 },
          cache: {},
          timings: { send: 1, wait: 10, receive: 1 },
        },
      ],
    },
  };
  return JSON.stringify(har, null, 2);
}

function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const s = makeSecrets();
  const startMs = Date.now();
  const t = makeTokens(s, Math.floor(startMs / 1000));
  for (const [name, build] of [['firefox-flavoured.har', firefox], ['charles-flavoured.har', charles]]) {
    const { text, planted, source } = build(s, t, startMs);
    fs.writeFileSync(path.join(OUT, name), text + '\n');
    const secrets = manifest.check(name, text, planted);
    manifest.update(OUT, name, secrets, { source });
    console.log(`wrote ${path.join(OUT, name)} (${bytes(text) + 1} bytes, ${JSON.parse(text).log.entries.length} entries, ${secrets.length} planted secrets)`);
  }
  const m = minimal();
  fs.writeFileSync(path.join(OUT, 'minimal.har'), m + '\n');
  manifest.update(OUT, 'minimal.har', [], { source: 'hand-written HAR 1.2, one entry, no secrets (negative tests)' });
  console.log(`wrote ${path.join(OUT, 'minimal.har')} (${bytes(m) + 1} bytes)`);
}

main();
