import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, LOGIN_BINDING_REJECT_REASONS, OAUTH_REJECT_REASONS, SAML_LOGOUT_REJECT_REASONS, SAML_REJECT_REASONS } from '../../../src/errors/index.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

describe('error code registry', () => {
  it('documents every code with its status, and documents no stale code', () => {
    const documented = new Map([...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      assert.equal(documented.get(code), status, `docs/errors.md must list ${code} with status ${status}`);
    }
    for (const code of documented.keys()) assert.ok(code in ERROR_CODES, `docs/errors.md lists stale code ${code}`);
  });

  it('documents every private SAML, SAML logout, OAuth and login binding reason', () => {
    for (const reason of [...SAML_REJECT_REASONS, ...SAML_LOGOUT_REJECT_REASONS, ...OAUTH_REJECT_REASONS, ...LOGIN_BINDING_REJECT_REASONS]) assert.ok(doc.includes(`\`${reason}\``), `docs/errors.md must list ${reason}`);
  });

  it('uses snake_case codes and 4xx/5xx statuses only', () => {
    for (const [code, { status, message }] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^[a-z]+(_[a-z0-9]+)*$/);
      assert.ok(status >= 400 && status < 600);
      assert.ok(message.length > 10 && /[.!]$/.test(message), `${code} needs a sentence`);
    }
  });
});
