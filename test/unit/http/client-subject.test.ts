import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Request } from 'express';
import { clientSubject } from '../../../src/http/rate-limit.js';

const subject = (ip: string | undefined): string => clientSubject({ ip } as Request);

describe('who a per-client rate limit counts', () => {
  it('an IPv4 client by its address, also when written IPv4-mapped', () => {
    assert.equal(subject('203.0.113.9'), '203.0.113.9');
    assert.equal(subject('::ffff:203.0.113.9'), '203.0.113.9');
    assert.equal(subject('::FFFF:cb00:7109'), '203.0.113.9');
  });

  it('an IPv6 client by its /64, however the address is written', () => {
    assert.equal(subject('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(subject('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(subject('2001:db8:1:2:3:4:1.2.3.4'), '2001:db8:1:2::/64');
    assert.equal(subject('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(subject('::1'), '0:0:0:0::/64');
    assert.notEqual(subject('2001:db8:1:3::1'), subject('2001:db8:1:2::1'));
  });

  it('anything else as it is (a trusted proxy may pass garbage), and no address as one client', () => {
    assert.equal(subject('not-an-ip'), 'not-an-ip');
    assert.equal(subject(''), 'unknown');
    assert.equal(subject(undefined), 'unknown');
  });
});
