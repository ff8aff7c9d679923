'use strict';
// MANIFEST.json: for each fixture, the planted secrets as {kind, sha256, where}.
// Plaintext values never reach the manifest. Before a secret is listed, the fixture
// is checked to really contain it (raw, JSON-escaped, URL-encoded, or inside a
// base64-encoded body), so the manifest only lists what a scanner can find.

const fs = require('fs');
const path = require('path');
const { sha256 } = require('./secrets');

function encodings(value) {
  const forms = new Set([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]);
  forms.add(new URLSearchParams({ v: value }).toString().slice(2)); // form encoding: '!' -> %21, ' ' -> +
  return [...forms];
}

/** All text a HAR holds, with base64 bodies decoded too. */
function searchableText(harText) {
  const parts = [harText];
  const walk = (node) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node && typeof node === 'object') {
      if (node.encoding === 'base64' && typeof node.text === 'string') parts.push(Buffer.from(node.text, 'base64').toString('utf8'));
      for (const v of Object.values(node)) walk(v);
    }
  };
  walk(JSON.parse(harText));
  return parts.join('\n');
}

/**
 * planted: [{kind, value, where, optional?}]. Returns manifest entries for those found;
 * throws when a required one is missing.
 */
function check(fixture, harText, planted) {
  const haystack = searchableText(harText);
  const entries = [];
  const missing = [];
  const seen = new Set();
  for (const p of planted) {
    if (!p.value) throw new Error(`${fixture}: empty value for ${p.kind} (${p.where})`);
    const found = encodings(p.value).some((form) => haystack.includes(form));
    if (!found) {
      if (p.optional) console.warn(`  note: ${fixture}: ${p.kind} not recorded (${p.where}); left out of the manifest`);
      else missing.push(`${p.kind} (${p.where})`);
      continue;
    }
    const hash = sha256(p.value);
    if (seen.has(hash)) throw new Error(`${fixture}: ${p.kind} listed twice`);
    seen.add(hash);
    entries.push({ kind: p.kind, sha256: hash, where: p.where });
  }
  if (missing.length) throw new Error(`${fixture}: planted secrets not found in the HAR:\n  ${missing.join('\n  ')}`);
  return entries;
}

/** Replace (or add) the fixture's entry in OUT/MANIFEST.json, keeping the others. */
function update(outDir, fixture, secrets, extra = {}) {
  const file = path.join(outDir, 'MANIFEST.json');
  let manifest = { description: '', seed: '', fixtures: [] };
  if (fs.existsSync(file)) manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  manifest.description =
    'Planted FAKE secrets per HAR fixture: kind, sha256 of the exact secret value (hex), and where it sits. ' +
    'Regenerate with tools/har-fixtures/regenerate.sh. JWT hashes change on every regeneration (iat/exp follow the capture time).';
  manifest.seed = require('./secrets').SEED;
  const entry = { fixture, ...extra, secrets };
  const i = manifest.fixtures.findIndex((f) => f.fixture === fixture);
  if (i >= 0) manifest.fixtures[i] = entry;
  else manifest.fixtures.push(entry);
  const order = ['chromium-login.har', 'firefox-flavoured.har', 'charles-flavoured.har', 'minimal.har'];
  manifest.fixtures.sort((a, b) => (order.indexOf(a.fixture) + 1 || 99) - (order.indexOf(b.fixture) + 1 || 99));
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
}

module.exports = { check, update, searchableText };
