import { Fragment, useCallback, useEffect, useId, useRef, useState } from 'react';
import { auditApi, type AuditEvent, type AuditFilters } from '../api-audit';
import type { ScreenProps } from '../App';
import { BusyButton, Dialog, EmptyState, ErrorAlert, Field, Loading, useAnnounce } from '../components/ui';
import { useI18n } from '../i18n';
import { reasonLabel } from '../reasons';

const PAGE = 100;
const TYPE_RE = /^[a-z0-9_.]+\*?$/;
/** Suggestions for the action filter (any type or prefix may be typed). */
const TYPE_SUGGESTIONS = [
  'login.*',
  'login.succeeded',
  'login.failed',
  'login.locked',
  'saml_response.rejected',
  'oauth_callback.rejected',
  'logout.*',
  'member.*',
  'members.*',
  'api_key.created',
  'api_key.revoked',
  'sso.*',
  'audit.exported',
];

interface Form {
  type: string;
  actor: string;
  member: string;
  result: '' | 'success' | 'failure';
  from: string;
  to: string;
}
const EMPTY: Form = { type: '', actor: '', member: '', result: '', from: '', to: '' };

/** A datetime-local value (the admin's local time, to the minute) as an ISO instant; `end` takes the whole minute. */
function instant(local: string, end: boolean): string | undefined {
  if (!local) return undefined;
  const ms = new Date(local).getTime();
  if (Number.isNaN(ms)) return undefined;
  return new Date(ms + (end ? 59_999 : 0)).toISOString();
}

function filtersOf(f: Form): AuditFilters {
  return {
    type: f.type.trim() || undefined,
    actor: f.actor.trim() || undefined,
    member: f.member.trim() || undefined,
    result: f.result || undefined,
    from: instant(f.from, false),
    to: instant(f.to, true),
  };
}

/** The member an event is about: its actor if a member acted, else the member an admin changed. */
export function memberOf(e: AuditEvent): string | null {
  if (typeof e.data?.memberId === 'string') return e.data.memberId;
  return e.actor.startsWith('member:') ? e.actor.slice('member:'.length) : null;
}

export function AuditScreen({ domain }: ScreenProps) {
  const { t, formatDate, formatNumber } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [form, setForm] = useState<Form>(() => {
    const params = new URLSearchParams(location.search);
    const result = params.get('result');
    return { ...EMPTY, type: params.get('type') ?? '', result: result === 'success' || result === 'failure' ? result : '' };
  });
  const [applied, setApplied] = useState<AuditFilters>(() => filtersOf(form));
  const [problems, setProblems] = useState<{ type?: string; to?: string }>({});
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [detail, setDetail] = useState<AuditEvent | null>(null);
  const seq = useRef(0);

  const load = useCallback(
    async (filters: AuditFilters, cursor: string | null) => {
      const mine = ++seq.current;
      setLoading(true);
      setError(null);
      try {
        const page = await auditApi.page(domain, filters, PAGE, cursor);
        if (mine !== seq.current) return;
        setEvents((old) => (cursor && old ? [...old, ...page.events] : page.events));
        setNextCursor(page.nextCursor);
        announce(t(cursor ? 'audit.loadedMore' : 'audit.found', { count: formatNumber(page.events.length) }));
      } catch (err) {
        if (mine === seq.current) setError(err);
      } finally {
        if (mine === seq.current) setLoading(false);
      }
    },
    [domain, announce, t, formatNumber],
  );

  useEffect(() => {
    void load(applied, null);
  }, [applied, load]);

  const apply = () => {
    const next: typeof problems = {};
    if (form.type.trim() && !TYPE_RE.test(form.type.trim())) next.type = t('audit.typeInvalid');
    const f = filtersOf(form);
    if (f.from && f.to && f.from > f.to) next.to = t('audit.rangeInvalid');
    setProblems(next);
    if (next.type || next.to) return;
    setApplied(f);
  };

  const clear = () => {
    setForm(EMPTY);
    setProblems({});
    setApplied({});
  };

  const set = (patch: Partial<Form>) => setForm((f) => ({ ...f, ...patch }));
  const filtered = Object.values(applied).some(Boolean);
  const outcome = (e: AuditEvent) =>
    e.reason === undefined ? (
      <span className="badge badge-on">{t('audit.ok')}</span>
    ) : (
      <span className="outcome">
        <span className="badge badge-bad">{t('audit.refused')}</span> <code>{e.reason}</code>
        {reasonLabel(t, e.reason) ? <span className="reason-words">{reasonLabel(t, e.reason)}</span> : null}
      </span>
    );

  return (
    <>
      <h1 tabIndex={-1}>{t('audit.title')}</h1>
      <p className="lead">{t('audit.intro')}</p>
      <section className="panel" aria-labelledby={`${id}-filters`}>
        <h2 id={`${id}-filters`}>{t('audit.filters')}</h2>
        <form
          noValidate
          data-testid="audit-filters"
          onSubmit={(e) => {
            e.preventDefault();
            apply();
          }}
        >
          <div className="audit-filters">
            <Field label={t('audit.type')} hint={t('audit.typeHint')} error={problems.type}>
              {(props) => (
                <input
                  {...props}
                  type="text"
                  list={`${id}-types`}
                  value={form.type}
                  maxLength={100}
                  autoComplete="off"
                  spellCheck={false}
                  onChange={(e) => set({ type: e.target.value })}
                  data-testid="audit-type"
                />
              )}
            </Field>
            <datalist id={`${id}-types`}>
              {TYPE_SUGGESTIONS.map((s) => (
                <option key={s} value={s} />
              ))}
            </datalist>
            <Field label={t('audit.actor')} hint={t('audit.actorHint')}>
              {(props) => (
                <input {...props} type="text" value={form.actor} maxLength={200} spellCheck={false} onChange={(e) => set({ actor: e.target.value })} data-testid="audit-actor" />
              )}
            </Field>
            <Field label={t('audit.member')} hint={t('audit.memberHint')}>
              {(props) => (
                <input {...props} type="text" value={form.member} maxLength={200} spellCheck={false} onChange={(e) => set({ member: e.target.value })} data-testid="audit-member" />
              )}
            </Field>
            <Field label={t('audit.result')}>
              {(props) => (
                <select {...props} value={form.result} onChange={(e) => set({ result: e.target.value as Form['result'] })} data-testid="audit-result">
                  <option value="">{t('audit.resultAny')}</option>
                  <option value="success">{t('audit.resultSuccess')}</option>
                  <option value="failure">{t('audit.resultFailure')}</option>
                </select>
              )}
            </Field>
            <Field label={t('audit.from')} hint={t('audit.timeHint')}>
              {(props) => <input {...props} type="datetime-local" value={form.from} onChange={(e) => set({ from: e.target.value })} data-testid="audit-from" />}
            </Field>
            <Field label={t('audit.to')} hint={t('audit.timeHint')} error={problems.to}>
              {(props) => <input {...props} type="datetime-local" value={form.to} onChange={(e) => set({ to: e.target.value })} data-testid="audit-to" />}
            </Field>
          </div>
          <div className="actions">
            <BusyButton type="submit" busy={loading && events === null} label={t('audit.apply')} testId="audit-apply" />
            <button type="button" className="button button-secondary" onClick={clear} data-testid="audit-clear">
              {t('audit.clear')}
            </button>
            <a className="button button-secondary" href={auditApi.csvUrl(domain, applied)} download aria-describedby={`${id}-export`} data-testid="audit-export">
              {t('audit.export')}
            </a>
          </div>
          <p id={`${id}-export`} className="hint">
            {t('audit.exportHint')}
          </p>
        </form>
      </section>
      <ErrorAlert error={error} />
      {events === null && loading ? <Loading /> : null}
      {events && events.length === 0 && !nextCursor ? (
        filtered ? (
          <EmptyState title={t('audit.emptyFiltered')} body={t('audit.emptyFilteredHint')} />
        ) : (
          <EmptyState title={t('audit.empty')} body={t('audit.emptyHint')} />
        )
      ) : null}
      {events && events.length > 0 ? (
        <>
          <p className="count" data-testid="audit-count">
            {t('audit.shown', { count: formatNumber(events.length) })}
          </p>
          <div className="table-wrap">
            <table className="table audit-table" data-testid="audit-table">
              <caption className="visually-hidden">{t('audit.title')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('audit.time')}</th>
                  <th scope="col">{t('audit.field.type')}</th>
                  <th scope="col">{t('audit.field.actor')}</th>
                  <th scope="col">{t('audit.member')}</th>
                  <th scope="col">{t('audit.field.result')}</th>
                  <th scope="col">{t('common.actions')}</th>
                </tr>
              </thead>
              <tbody>
                {events.map((e) => (
                  <tr key={e.id} data-event-id={e.id} data-event-type={e.type}>
                    <td className="nowrap">
                      <time dateTime={e.at}>{formatDate(e.at)}</time>
                    </td>
                    <td>
                      <code>{e.type}</code>
                    </td>
                    <td className="break">{e.actor}</td>
                    <td className="break">{memberOf(e) ?? '—'}</td>
                    <td>{outcome(e)}</td>
                    <td>
                      <button
                        type="button"
                        className="button button-small button-secondary"
                        aria-label={t('audit.detailsLabel', { type: e.type, time: formatDate(e.at) })}
                        onClick={() => setDetail(e)}
                        data-testid="audit-details"
                      >
                        {t('audit.details')}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
      {events && events.length === 0 && nextCursor ? (
        <p className="note" data-testid="audit-searched-no-match">
          {t('audit.searchedNoMatch')}
        </p>
      ) : null}
      {events && nextCursor ? (
        <div className="actions">
          <BusyButton busy={loading} kind="secondary" label={t('audit.loadMore')} onClick={() => void load(applied, nextCursor)} testId="audit-load-more" />
        </div>
      ) : null}
      {events && events.length > 0 && !nextCursor ? (
        <p className="note" data-testid="audit-end">
          {t('audit.end')}
        </p>
      ) : null}
      <Dialog
        open={detail !== null}
        title={t('audit.detailTitle')}
        onClose={() => setDetail(null)}
        testId="audit-detail"
        footer={
          <button type="button" className="button button-primary" onClick={() => setDetail(null)} data-testid="audit-detail-close">
            {t('common.close')}
          </button>
        }
      >
        {detail ? <EventFacts event={detail} /> : null}
      </Dialog>
    </>
  );
}

function EventFacts({ event: e }: { event: AuditEvent }) {
  const { t, formatDate } = useI18n();
  const data = Object.entries(e.data ?? {});
  const words = e.reason ? reasonLabel(t, e.reason) : null;
  return (
    <>
      <dl className="facts" data-testid="audit-detail-facts">
        <dt>{t('audit.field.type')}</dt>
        <dd>
          <code data-testid="audit-detail-type">{e.type}</code>
        </dd>
        <dt>{t('audit.field.at')}</dt>
        <dd>{formatDate(e.at)}</dd>
        <dt>{t('audit.field.atUtc')}</dt>
        <dd>
          <code>{e.at}</code>
        </dd>
        <dt>{t('audit.field.actor')}</dt>
        <dd>{e.actor}</dd>
        <dt>{t('audit.field.result')}</dt>
        <dd>{e.reason === undefined ? t('audit.ok') : t('audit.refused')}</dd>
        {e.reason !== undefined ? (
          <>
            <dt>{t('audit.field.reason')}</dt>
            <dd>
              <code>{e.reason}</code> {words}
            </dd>
          </>
        ) : null}
        {e.domain ? (
          <>
            <dt>{t('audit.field.domain')}</dt>
            <dd>{e.domain}</dd>
          </>
        ) : null}
        <dt>{t('audit.field.ip')}</dt>
        <dd>{e.ip ?? '—'}</dd>
        <dt>{t('audit.field.requestId')}</dt>
        <dd>{e.requestId ? <code>{e.requestId}</code> : '—'}</dd>
        <dt>{t('audit.field.id')}</dt>
        <dd>
          <code>{e.id}</code>
        </dd>
      </dl>
      <h3 className="facts-heading">{t('audit.field.data')}</h3>
      {data.length ? (
        <dl className="facts" data-testid="audit-detail-data">
          {data.map(([k, v]) => (
            <Fragment key={k}>
              <dt>
                <code>{k}</code>
              </dt>
              <dd>{v === null ? '—' : String(v)}</dd>
            </Fragment>
          ))}
        </dl>
      ) : (
        <p className="muted">{t('audit.noData')}</p>
      )}
    </>
  );
}
