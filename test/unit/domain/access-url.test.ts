import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAccessUrl, checkLogoutRedirect } from '../../../src/domain/access-url.js';
import { AppError } from '../../../src/errors/index.js';
import { OPEN_REDIRECT_SHAPES } from '../../fixtures/open-redirect-shapes.js';

const policy = {
  allowedOrigins: ['https://board.example.net', 'https://intranet.a.example'],
  allowHttp: false,
  defaultServiceUrl: 'https://board.example.net/home',
};

describe('accessUrl rules (S-5)', () => {
  it('refuses at least 20 open-redirect shapes with invalid_access_url', () => {
    assert.ok(OPEN_REDIRECT_SHAPES.length >= 20);
    for (const [name, shape] of OPEN_REDIRECT_SHAPES) {
      assert.throws(
        () => checkAccessUrl(shape, policy),
        (err: unknown) => err instanceof AppError && err.code === 'invalid_access_url' && err.status === 400,
        name,
      );
    }
  });

  it('refuses non-string values (repeated query parameters)', () => {
    assert.throws(() => checkAccessUrl(['https://board.example.net/'], policy), AppError);
    assert.throws(() => checkAccessUrl({ a: 1 }, policy), AppError);
  });

  it('accepts allowed origins and returns exactly the normalised URL', () => {
    assert.equal(checkAccessUrl('https://board.example.net/list?x=1&y=%20', policy), 'https://board.example.net/list?x=1&y=%20');
    assert.equal(checkAccessUrl('HTTPS://BOARD.example.net/A', policy), 'https://board.example.net/A');
    assert.equal(checkAccessUrl('https://intranet.a.example', policy), 'https://intranet.a.example/');
  });

  it('admits an internal page of the gateway exactly (any query), and nothing else of its origin', () => {
    const withPage = { ...policy, internalPages: ['https://sso.bridge.test/console/auth/complete'] };
    assert.equal(checkAccessUrl('https://sso.bridge.test/console/auth/complete?domain=a.example', withPage), 'https://sso.bridge.test/console/auth/complete?domain=a.example');
    assert.equal(checkAccessUrl('https://SSO.bridge.test/console/auth/complete', withPage), 'https://sso.bridge.test/console/auth/complete');
    for (const bad of [
      'https://sso.bridge.test/console/auth/completely',
      'https://sso.bridge.test/console/auth/complete/',
      'https://sso.bridge.test/console/auth/complete/x',
      'https://sso.bridge.test/console/auth/%63omplete',
      'https://sso.bridge.test/console/',
      'https://sso.bridge.test/',
      'http://sso.bridge.test/console/auth/complete',
      'https://sso.bridge.test:444/console/auth/complete',
      'https://user@sso.bridge.test/console/auth/complete',
      'https://sso.bridge.test/console/auth/complete#x',
    ]) {
      assert.throws(() => checkAccessUrl(bad, withPage), AppError, bad);
    }
  });

  it('resolves a path with exactly one leading slash on the default service origin', () => {
    assert.equal(checkAccessUrl('/mail/inbox?id=3', policy), 'https://board.example.net/mail/inbox?id=3');
    assert.equal(checkAccessUrl('/%2F%2Fevil.example', policy), 'https://board.example.net/%2F%2Fevil.example');
  });

  it('uses the default service URL when accessUrl is missing', () => {
    assert.equal(checkAccessUrl(undefined, policy), 'https://board.example.net/home');
    assert.equal(checkAccessUrl('', policy), 'https://board.example.net/home');
  });

  it('allows http only when the gateway itself runs on http', () => {
    const httpPolicy = { ...policy, allowHttp: true, allowedOrigins: ['http://localhost:3000'] };
    assert.equal(checkAccessUrl('http://localhost:3000/welcome', httpPolicy), 'http://localhost:3000/welcome');
  });

  it('refuses an accessUrl longer than 2,048 characters as sent or once normalised (the login transaction stores the normalised form)', () => {
    const refused = (raw: string): boolean => {
      try {
        checkAccessUrl(raw, policy);
        return false;
      } catch (err) {
        return err instanceof AppError && err.code === 'invalid_access_url';
      }
    };
    const origin = 'https://board.example.net/';
    assert.equal(checkAccessUrl(origin + 'a'.repeat(2048 - origin.length), policy).length, 2048, 'the longest accepted target');
    assert.ok(refused(origin + 'a'.repeat(2049 - origin.length)), 'too long as sent');
    // Short as sent, long once percent-encoded: 9 characters per CJK character, 3 per quote.
    assert.ok(refused(origin + 'あ'.repeat(300)), 'CJK text');
    assert.ok(refused(`/${'"'.repeat(700)}`), 'a path of quotes');
    assert.equal(checkAccessUrl(`/${'あ'.repeat(200)}`, policy).length, 'https://board.example.net/'.length + 1800, 'expanding but short enough');
  });
});

describe('logout redirect rules (S-19)', () => {
  const hosts = ['a.example', '*.portal.a.example'];
  it('allows exact hosts and *.host subdomains', () => {
    assert.equal(checkLogoutRedirect('https://a.example/bye', hosts, false), 'https://a.example/bye');
    assert.equal(checkLogoutRedirect('https://x.portal.a.example/', hosts, false), 'https://x.portal.a.example/');
    assert.equal(checkLogoutRedirect('https://y.x.portal.a.example/', hosts, false), 'https://y.x.portal.a.example/');
  });
  it('refuses everything else', () => {
    const bad = [
      'https://portal.a.example/', // *.host does not include the bare host
      'https://evil.example/a.example',
      'https://a.example.evil.example/',
      'https://a.example@evil.example/',
      'https://evilportal.a.example/',
      'http://a.example/',
      '//a.example/',
      '/relative',
      'javascript:alert(1)',
      'https://a.example\\@evil.example',
      '\thttps://a.example/',
      '',
      undefined,
      ['https://a.example/'],
    ];
    for (const b of bad) assert.equal(checkLogoutRedirect(b, hosts, false), null, String(b));
  });

  it('refuses a redirect longer than 2,048 characters once normalised', () => {
    assert.equal(checkLogoutRedirect(`https://a.example/${'あ'.repeat(300)}`, ['a.example'], false), null);
    assert.ok(checkLogoutRedirect(`https://a.example/${'あ'.repeat(200)}`, ['a.example'], false));
  });
});
