import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signWebhook } from '../../../src/observability/webhooks.js';

describe('Webhook signatures (Standard Webhooks)', () => {
  it('reproduces the published Standard Webhooks test vector, so receivers\' libraries verify ours', () => {
    assert.equal(
      signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'),
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  it('changes with the id, the timestamp and the body', () => {
    const base = signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_1', 1614265330, '{}');
    assert.notEqual(signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_2', 1614265330, '{}'), base);
    assert.notEqual(signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_1', 1614265331, '{}'), base);
    assert.notEqual(signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_1', 1614265330, '{ }'), base);
  });
});
