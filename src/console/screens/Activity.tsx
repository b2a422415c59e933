import { useEffect, useId, useMemo, useState } from 'react';
import { auditApi, PROTOCOLS, type ActivityDay, type ActivitySummary } from '../api-audit';
import type { ScreenProps } from '../App';
import { ErrorAlert, Loading } from '../components/ui';
import { useI18n, type MessageKey } from '../i18n';
import { reasonLabel } from '../reasons';
import { BASE } from '../router';

const DAYS = 30;
type Protocol = (typeof PROTOCOLS)[number];
const PROTOCOL_KEY: Record<Protocol, MessageKey> = { saml: 'activity.protocol.saml', oauth: 'activity.protocol.oauth', password: 'activity.protocol.password' };

const sum = (day: ActivityDay, result: 'success' | 'failure'): number => PROTOCOLS.reduce((n, p) => n + day[p][result], 0);

/** A round step (1, 2 or 5 × 10^k) giving about four gridlines up to `max`. */
function axisOf(max: number): { top: number; ticks: number[] } {
  if (max <= 0) return { top: 1, ticks: [0, 1] };
  const raw = max / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow);
  const top = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = 0; v <= top; v += step) ticks.push(v);
  return { top, ticks };
}

export function ActivityScreen({ domain }: ScreenProps) {
  const { t, lang, formatNumber } = useI18n();
  const id = useId();
  const [data, setData] = useState<ActivitySummary | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let live = true;
    auditApi
      .activity(domain, DAYS)
      .then((summary) => live && setData(summary))
      .catch((err: unknown) => live && setError(err));
    return () => {
      live = false;
    };
  }, [domain]);

  const dayLabel = useMemo(() => {
    const f = new Intl.DateTimeFormat(lang, { month: 'short', day: 'numeric', timeZone: 'UTC' });
    return (date: string) => f.format(new Date(`${date}T00:00:00Z`));
  }, [lang]);
  const percent = useMemo(() => new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 1 }), [lang]);

  const totals = useMemo(() => {
    if (!data) return null;
    const ok = data.days.reduce((n, d) => n + sum(d, 'success'), 0);
    const failed = data.days.reduce((n, d) => n + sum(d, 'failure'), 0);
    let busiest = data.days[0];
    for (const d of data.days) if (busiest && sum(d, 'success') + sum(d, 'failure') > sum(busiest, 'success') + sum(busiest, 'failure')) busiest = d;
    return { ok, failed, busiest };
  }, [data]);

  return (
    <>
      <h1 tabIndex={-1}>{t('activity.title')}</h1>
      <p className="lead">{t('activity.intro')}</p>
      <ErrorAlert error={error} />
      {!data && !error ? <Loading /> : null}
      {data && totals ? (
        <>
          <div className="cards">
            <div className="card">
              <h2>{t('activity.signedIn')}</h2>
              <p className="big" data-testid="activity-total-ok">
                {formatNumber(totals.ok)}
              </p>
            </div>
            <div className="card">
              <h2>{t('activity.refused')}</h2>
              <p className="big" data-testid="activity-total-failed">
                {formatNumber(totals.failed)}
              </p>
            </div>
            <div className="card">
              <h2>{t('activity.refusedShare')}</h2>
              <p className="big">{totals.ok + totals.failed ? percent.format(totals.failed / (totals.ok + totals.failed)) : '—'}</p>
            </div>
          </div>
          <section className="panel" aria-labelledby={`${id}-chart`}>
            <h2 id={`${id}-chart`}>{t('activity.chartTitle')}</h2>
            <p className="hint">{t('activity.pairNote')}</p>
            <Chart
              days={data.days}
              label={
                totals.ok + totals.failed && totals.busiest
                  ? t('activity.chartSummary', {
                      from: dayLabel(data.from),
                      to: dayLabel(data.to),
                      ok: formatNumber(totals.ok),
                      failed: formatNumber(totals.failed),
                      day: dayLabel(totals.busiest.date),
                      max: formatNumber(sum(totals.busiest, 'success') + sum(totals.busiest, 'failure')),
                    })
                  : t('activity.chartEmpty', { from: dayLabel(data.from), to: dayLabel(data.to) })
              }
              dayLabel={dayLabel}
              formatNumber={formatNumber}
            />
            <ul className="legend" aria-label={t('activity.legend')} data-testid="activity-legend">
              {PROTOCOLS.map((p) => (
                <li key={`${p}-ok`}>
                  <span className={`swatch series-${p}-success`} aria-hidden="true" />
                  {t('activity.seriesOk', { protocol: t(PROTOCOL_KEY[p]) })}
                </li>
              ))}
              {PROTOCOLS.map((p) => (
                <li key={`${p}-failed`}>
                  <span className={`swatch series-${p}-failure`} aria-hidden="true" />
                  {t('activity.seriesFailed', { protocol: t(PROTOCOL_KEY[p]) })}
                </li>
              ))}
            </ul>
            <details className="numbers" data-testid="activity-numbers">
              <summary>{t('activity.table')}</summary>
              <div className="table-wrap">
                <table className="table" data-testid="activity-table">
                  <caption className="visually-hidden">{t('activity.table')}</caption>
                  <thead>
                    <tr>
                      <th scope="col">{t('activity.date')}</th>
                      {PROTOCOLS.map((p) => (
                        <th scope="col" key={`${p}-ok`} className="num">
                          {t('activity.seriesOk', { protocol: t(PROTOCOL_KEY[p]) })}
                        </th>
                      ))}
                      {PROTOCOLS.map((p) => (
                        <th scope="col" key={`${p}-failed`} className="num">
                          {t('activity.seriesFailed', { protocol: t(PROTOCOL_KEY[p]) })}
                        </th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {[...data.days].reverse().map((d) => (
                      <tr key={d.date} data-date={d.date}>
                        <th scope="row" className="nowrap">
                          <time dateTime={d.date}>{d.date}</time>
                        </th>
                        {PROTOCOLS.map((p) => (
                          <td key={`${p}-ok`} className="num">
                            {formatNumber(d[p].success)}
                          </td>
                        ))}
                        {PROTOCOLS.map((p) => (
                          <td key={`${p}-failed`} className="num">
                            {formatNumber(d[p].failure)}
                          </td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                  <tfoot>
                    <tr>
                      <th scope="row">{t('activity.total')}</th>
                      {PROTOCOLS.map((p) => (
                        <td key={`${p}-ok`} className="num">
                          {formatNumber(data.days.reduce((n, d) => n + d[p].success, 0))}
                        </td>
                      ))}
                      {PROTOCOLS.map((p) => (
                        <td key={`${p}-failed`} className="num">
                          {formatNumber(data.days.reduce((n, d) => n + d[p].failure, 0))}
                        </td>
                      ))}
                    </tr>
                  </tfoot>
                </table>
              </div>
            </details>
          </section>
          <section className="panel" aria-labelledby={`${id}-reasons`}>
            <h2 id={`${id}-reasons`}>{t('activity.reasons')}</h2>
            {data.topRefusalReasons.length === 0 ? (
              <p className="empty-inline" data-testid="activity-reasons-empty">
                {t('activity.reasonsEmpty')}
              </p>
            ) : (
              <>
                <p className="hint">{t('activity.reasonsHint')}</p>
                <ol className="reasons" data-testid="activity-reasons">
                  {data.topRefusalReasons.map((r) => (
                    <li key={r.reason} data-reason={r.reason}>
                      <span className="reason-text">
                        {reasonLabel(t, r.reason) ? <span className="reason-words">{reasonLabel(t, r.reason)}</span> : null}
                        <code>{r.reason}</code>
                      </span>
                      <span className="reason-count">{t('activity.reasonCount', { count: formatNumber(r.count) })}</span>
                    </li>
                  ))}
                </ol>
                <p>
                  <a href={`${BASE}/audit?result=failure`} data-testid="activity-show-refused">
                    {t('activity.showRefused')}
                  </a>
                </p>
              </>
            )}
          </section>
        </>
      ) : null}
    </>
  );
}

const SLOT = 24;
const BAR = 9;
const LEFT = 44;
const TOP = 10;
const PLOT = 180;
const BOTTOM = 26;

/** Two stacked bars per day (signed in, refused), each split by protocol; SVG presentation attributes and classes only (CSP). */
function Chart({
  days,
  label,
  dayLabel,
  formatNumber,
}: {
  days: ActivityDay[];
  label: string;
  dayLabel: (date: string) => string;
  formatNumber: (n: number) => string;
}) {
  const max = Math.max(0, ...days.map((d) => Math.max(sum(d, 'success'), sum(d, 'failure'))));
  const { top, ticks } = axisOf(max);
  const width = LEFT + days.length * SLOT + 20;
  const height = TOP + PLOT + BOTTOM;
  const y = (v: number) => TOP + PLOT - (v / top) * PLOT;
  const stack = (d: ActivityDay, result: 'success' | 'failure', x: number) => {
    let base = 0;
    return PROTOCOLS.map((p) => {
      const v = d[p][result];
      if (!v) return null;
      const rect = <rect key={`${p}-${result}`} className={`series-${p}-${result}`} x={x} y={y(base + v)} width={BAR} height={y(base) - y(base + v)} />;
      base += v;
      return rect;
    });
  };
  return (
    <svg className="chart" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label} data-testid="activity-chart" preserveAspectRatio="xMinYMin meet">
      {ticks.map((v) => (
        <g key={v}>
          <line className="chart-grid" x1={LEFT} x2={width - 4} y1={y(v)} y2={y(v)} />
          <text className="chart-axis" x={LEFT - 6} y={y(v) + 4} textAnchor="end">
            {formatNumber(v)}
          </text>
        </g>
      ))}
      {days.map((d, i) => {
        const x = LEFT + i * SLOT + (SLOT - 2 * BAR - 2) / 2;
        const labelled = (days.length - 1 - i) % 7 === 0;
        return (
          <g key={d.date} data-date={d.date} data-success={sum(d, 'success')} data-failure={sum(d, 'failure')}>
            {stack(d, 'success', x)}
            {stack(d, 'failure', x + BAR + 2)}
            {labelled ? (
              <text className="chart-axis" x={x + BAR + 1} y={TOP + PLOT + 16} textAnchor="middle">
                {dayLabel(d.date)}
              </text>
            ) : null}
          </g>
        );
      })}
      <line className="chart-baseline" x1={LEFT} x2={width - 4} y1={y(0)} y2={y(0)} />
    </svg>
  );
}
