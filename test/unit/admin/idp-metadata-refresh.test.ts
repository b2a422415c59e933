import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdpMetadataRefresher, refreshStatusView, type MetadataRefreshSettings } from '../../../src/admin/idp-metadata-refresh.js';

const SETTINGS: MetadataRefreshSettings = { enabled: true, intervalMinutes: 360, jitterPercent: 10, backoffFirstSeconds: 300, backoffMaxSeconds: 21_600, checkEverySeconds: 60 };
const HOUR = 3600_000;

/** Only the schedule arithmetic is exercised: it reads nothing but the settings and the random draw. */
const refresher = (random: () => number, settings = SETTINGS): IdpMetadataRefresher =>
  new IdpMetadataRefresher({ settings, random } as unknown as ConstructorParameters<typeof IdpMetadataRefresher>[0]);

describe('IdP metadata refresh schedule', () => {
  it('spreads the next refresh over 6 h ± 10 % by the random draw', () => {
    assert.equal(refresher(() => 0).nextAfterSuccess(0), 5.4 * HOUR);
    assert.equal(refresher(() => 0.5).nextAfterSuccess(0), 6 * HOUR);
    assert.equal(refresher(() => 0.999999).nextAfterSuccess(1000) - 1000, Math.round(6 * HOUR + 0.999998 * 0.6 * HOUR));
    assert.equal(refresher(() => 0.3, { ...SETTINGS, jitterPercent: 0 }).nextAfterSuccess(0), 6 * HOUR);
  });

  it('backs off 5 min, doubling per failure in a row, capped at 6 h', () => {
    const r = refresher(() => 0.5);
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 100].map((n) => r.nextAfterFailure(0, n) / 60_000),
      [5, 10, 20, 40, 80, 160, 320, 360, 360],
    );
  });

  it('shows nothing without a URL, and a never-fetched URL as due now', () => {
    assert.equal(refreshStatusView(undefined, null), null);
    assert.equal(refreshStatusView({ idpEntityId: 'x' }, null), null);
    const view = refreshStatusView({ idpMetadataUrl: 'https://idp.example/metadata' }, null);
    assert.deepEqual(view, { url: 'https://idp.example/metadata', lastAttemptAt: null, lastSuccessAt: null, lastError: null, failures: 0, nextDueAt: new Date(0).toISOString() });
  });
});
