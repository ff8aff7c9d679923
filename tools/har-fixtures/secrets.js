'use strict';
// Deterministic FAKE secrets for the HAR fixtures. Nothing here is a real credential:
// every value is derived from SEED, so regenerating gives the same values (only the
// JWTs change, because their iat/exp follow the capture time).
//
// Each value is derived from its own label (sha256(SEED | label | counter) as a byte
// stream, rejection-sampled into the alphabet), so adding a secret never shifts others.

const crypto = require('crypto');

const SEED = 'keywatch-har-fixtures-v1';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const URLSAFE = BASE62 + '-_';
const HEX = '0123456789abcdef';
const B32UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const DIGITS = '0123456789';
const AWS_SECRET = BASE62 + '+/';

function* byteStream(label) {
  for (let counter = 0; ; counter++) {
    const block = crypto.createHash('sha256').update(`${SEED}|${label}|${counter}`).digest();
    yield* block;
  }
}

/** `n` characters from `alphabet`, deterministic in (SEED, label). */
function rand(label, n, alphabet) {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  for (const b of byteStream(label)) {
    if (out.length === n) break;
    if (b < limit) out += alphabet[b % alphabet.length];
  }
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** zlib-compatible CRC-32 (zlib.crc32 only exists from Node 20.15 / 22.2). */
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function base62(n, width) {
  let s = '';
  do {
    s = BASE62[n % 62] + s;
    n = Math.floor(n / 62);
  } while (n > 0);
  return s.padStart(width, '0');
}

/** GitHub token with a valid checksum: prefix_ + 30 base62 + base62(crc32(those 30), 6). */
function githubToken(prefix, label) {
  const body = rand(label, 30, BASE62);
  return `${prefix}_${body}${base62(crc32(Buffer.from(body)), 6)}`;
}

const b64url = (buf) => Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

/** A real HS256 JWT (base64url, no padding) signed with `key`. */
function signJwt(claims, key) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify(claims));
  const sig = b64url(crypto.createHmac('sha256', key).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${sig}`;
}

const ISSUER = 'https://auth.acme-fixtures.dev';

/** JWT claims: iat now, exp one hour later. */
function jwtFor(s, { sub, aud, nonce, extra } = {}, now = Math.floor(Date.now() / 1000)) {
  const claims = { iss: ISSUER, sub, aud, iat: now, exp: now + 3600, jti: rand(`jti:${sub}:${aud}`, 16, HEX) };
  if (nonce) claims.nonce = nonce;
  Object.assign(claims, extra || {});
  return signJwt(claims, s.jwtSigningKey);
}

function makeSecrets() {
  const basicUser = 'svc-deploy';
  const basicPassword = rand('basic-password', 20, BASE62);
  const s = {
    // login form
    username: 'alice.nguyen',
    password: `${rand('password-a', 6, BASE62)}!${rand('password-b', 5, BASE62)}#${rand('password-c', 5, BASE62)}`,
    csrf: rand('csrf', 32, URLSAFE),
    csrfCookie: rand('csrf-cookie', 32, BASE62),
    sessionId: rand('session-id', 64, URLSAFE),
    // client-credentials grant
    clientId: `acme-web-${rand('client-id', 8, HEX)}`,
    clientSecret: rand('client-secret', 48, URLSAFE),
    refreshToken: rand('refresh-token', 48, URLSAFE),
    jwtSigningKey: rand('jwt-signing-key', 32, BASE62),
    // /api/repos
    opaqueAccessToken: rand('opaque-access-token', 40, URLSAFE),
    githubPat: githubToken('ghp', 'github-pat'),
    awsAccessKeyId: `AKIA${rand('aws-akid', 16, B32UPPER)}`,
    awsSecretAccessKey: rand('aws-secret', 40, AWS_SECRET),
    // other APIs
    oktaToken: `00${rand('okta', 40, URLSAFE)}`,
    basicUser,
    basicPassword,
    basicCredential: Buffer.from(`${basicUser}:${basicPassword}`).toString('base64'),
    apiKeyHeader: rand('x-api-key', 32, HEX),
    uploadApiKey: `ak_${rand('upload-api-key', 32, BASE62)}`,
    slackBotToken: `xoxb-${rand('slack-team', 12, DIGITS).replace(/^0/, '4')}-${rand('slack-bot', 13, DIGITS).replace(/^0/, '7')}-${rand('slack-secret', 24, BASE62)}`,
    stripeLiveKey: `sk_live_51${rand('stripe-acct', 14, BASE62)}${rand('stripe-key', 85, BASE62)}`,
    // OAuth authorization-code + PKCE flow
    oauthClientId: `acme-spa-${rand('oauth-client-id', 8, HEX)}`,
    oauthClientSecret: rand('oauth-client-secret', 40, URLSAFE),
    oauthState: rand('oauth-state', 22, URLSAFE),
    oauthNonce: rand('oauth-nonce', 22, URLSAFE),
    codeVerifier: rand('pkce-verifier', 64, URLSAFE),
    authCode: rand('auth-code', 40, URLSAFE),
    oauthAccessToken: rand('oauth-access-token', 43, URLSAFE),
    oauthRefreshToken: rand('oauth-refresh-token', 48, URLSAFE),
    // implicit flow
    implicitAccessToken: rand('implicit-access-token', 43, URLSAFE),
    // websocket
    wsToken: rand('ws-token', 40, URLSAFE),
    // Firefox/Charles-only extras
    xsrfHeader: rand('xsrf-header', 36, URLSAFE),
    initiatorToken: rand('initiator-token', 32, URLSAFE),
    mobileSessionId: rand('mobile-session', 48, HEX),
  };
  s.codeChallenge = b64url(crypto.createHash('sha256').update(s.codeVerifier).digest());
  return s;
}

const sha256 = (value) => crypto.createHash('sha256').update(value, 'utf8').digest('hex');

module.exports = { SEED, ISSUER, makeSecrets, jwtFor, signJwt, githubToken, rand, sha256, b64url, BASE62, URLSAFE };
