import { useState } from 'react';
import { api, ApiError, type TestSignIn, type TestSignInStart } from '../../api';
import { BusyButton, ErrorAlert, useAnnounce, usePolling } from '../../components/ui';
import { useI18n } from '../../i18n';

export function TestSignInButton({ domain, canWrite, noteId }: { domain: string; canWrite: boolean; noteId: string }) {
  const { t, formatDate } = useI18n();
  const announce = useAnnounce();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [started, setStarted] = useState<TestSignInStart | null>(null);
  const [outcome, setOutcome] = useState<TestSignIn | null>(null);
  const [expired, setExpired] = useState(false);

  const start = async () => {
    setBusy(true);
    setError(null);
    setOutcome(null);
    setExpired(false);
    try {
      const s = await api.startTestSignIn(domain);
      setStarted(s);
      window.open(s.url, '_blank', 'noopener');
      announce(t('test.opened'));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const pending = Boolean(started) && !expired && (!outcome || outcome.status === 'pending');
  usePolling(
    async () => {
      if (!started) return;
      if (Date.parse(started.expiresAt) < Date.now()) {
        setExpired(true);
        return;
      }
      try {
        const o = await api.testSignIn(domain, started.id);
        setOutcome(o);
        if (o.status !== 'pending') announce(o.status === 'succeeded' ? t('test.succeeded') : t('test.failed'));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) setExpired(true);
      }
    },
    1000,
    pending,
  );

  return (
    <div className="test-signin">
      <BusyButton kind="secondary" busy={busy} label={t('test.button')} disabled={!canWrite} describedBy={canWrite ? undefined : noteId} onClick={() => void start()} testId="test-sign-in" />
      <ErrorAlert error={error} />
      {started ? (
        <div className="test-result" data-testid="test-sign-in-result" data-status={expired ? 'expired' : (outcome?.status ?? 'pending')}>
          {pending ? (
            <p>
              <span className="spinner" aria-hidden="true" />
              {t('test.waiting')}{' '}
              <a href={started.url} target="_blank" rel="noopener noreferrer" data-testid="test-sign-in-link">
                {t('test.openAgain')}
              </a>
            </p>
          ) : null}
          {expired ? <p className="note note-warn">{t('test.expired')}</p> : null}
          {outcome?.status === 'succeeded' ? (
            <div className="alert alert-success">
              <p className="alert-title">{t('test.succeeded')}</p>
              <dl className="facts">
                <dt>{t('test.member')}</dt>
                <dd data-testid="test-sign-in-member">
                  {outcome.member ? `${outcome.member.name} (${outcome.member.account})` : '—'}
                </dd>
                <dt>{t('member.externalKey')}</dt>
                <dd>{outcome.member?.externalKey ?? '—'}</dd>
                <dt>{t('test.assertedId')}</dt>
                <dd>
                  <code>{outcome.assertedId ?? '—'}</code>
                </dd>
                <dt>{t('test.finishedAt')}</dt>
                <dd>{formatDate(outcome.finishedAt)}</dd>
              </dl>
            </div>
          ) : null}
          {outcome?.status === 'failed' ? (
            <div className="alert alert-error" data-testid="test-sign-in-failure" data-reason={outcome.reason}>
              <p className="alert-title">{t('test.failed')}</p>
              <p>{outcome.message}</p>
              <dl className="facts">
                <dt>{t('test.reason')}</dt>
                <dd>
                  <code data-testid="test-sign-in-reason">{outcome.reason ?? outcome.code ?? '—'}</code>
                </dd>
                {outcome.assertedId ? (
                  <>
                    <dt>{t('test.assertedId')}</dt>
                    <dd>
                      <code>{outcome.assertedId}</code>
                    </dd>
                  </>
                ) : null}
              </dl>
            </div>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
