import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../../src/errors/index.js';
import { MemoryStore, type SetOptions } from '../../../src/store/index.js';
import { LoginTransactions, MAX_TRANSACTION_BYTES, newBrowserBinding } from '../../../src/sso/transactions.js';
import { FakeClock } from '../../helpers/clock.js';

/** The largest tenant domain (253 characters) and the longest fields every entry point lets through. */
const TENANT = { domain: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, ssoEpoch: 1_000_000 };
const LONGEST = {
  ssoType: 'oauth' as const,
  target: `https://board.example.net/${'a'.repeat(2048 - 'https://board.example.net/'.length)}`,
  clientKind: 'app' as const,
  requestId: `_${'f'.repeat(40)}`,
  sessionKey: 'k'.repeat(128),
  codeVerifier: 'v'.repeat(43),
  nonce: 'n'.repeat(43),
};

describe('login transactions: what one login may make the store hold', () => {
  it(`stores the largest legitimate transaction (under ${MAX_TRANSACTION_BYTES} bytes) and refuses a larger one before writing`, async () => {
    const clock = new FakeClock();
    const written: string[] = [];
    const store = new (class extends MemoryStore {
      override set(key: string, value: string, options?: SetOptions): Promise<boolean> {
        written.push(value);
        return super.set(key, value, options);
      }
    })(() => clock.now());
    try {
      const txns = new LoginTransactions(store, clock, 1800);
      await txns.create(TENANT, LONGEST, newBrowserBinding());
      assert.equal(written.length, 1);
      const stored = Buffer.byteLength(written[0]!);
      assert.ok(stored <= MAX_TRANSACTION_BYTES, `${stored} bytes`);
      assert.ok(stored > 2700, `${stored} bytes: the fields are at their longest`);

      await assert.rejects(
        txns.create(TENANT, { ...LONGEST, target: `https://board.example.net/${'%E3%81%82'.repeat(400)}` }, newBrowserBinding()),
        (err: unknown) => err instanceof AppError && err.code === 'bad_request' && err.reason === 'transaction_too_large',
      );
      assert.equal(written.length, 1, 'nothing more was written');
    } finally {
      await store.close();
    }
  });
});
