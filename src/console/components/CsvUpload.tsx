import { useId, useState, type ReactNode } from 'react';
import { ApiError, type CsvRowError } from '../api';
import { downloadText, errorReportCsv } from '../csv';
import { useI18n } from '../i18n';
import { BusyButton, ErrorAlert, PermissionNote, useAnnounce } from './ui';

/**
 * Pick a CSV file, send it with a real upload progress bar, then either a success summary or (400 csv_invalid)
 * the per-row errors, a downloadable report, and the plain statement that nothing was applied.
 */
export function CsvUpload<T>({
  label,
  submitLabel,
  reportName,
  allowed,
  send,
  renderSuccess,
  testId,
}: {
  label: string;
  submitLabel: string;
  reportName: string;
  allowed: boolean;
  send: (file: File, onProgress: (fraction: number) => void) => Promise<T>;
  renderSuccess: (result: T) => ReactNode;
  testId: string;
}) {
  const { t, formatNumber } = useI18n();
  const announce = useAnnounce();
  const inputId = useId();
  const noteId = useId();
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: T } | null>(null);
  const [rowErrors, setRowErrors] = useState<{ errors: CsvRowError[]; truncated: boolean } | null>(null);
  const [error, setError] = useState<unknown>(null);

  const submit = async () => {
    if (!file) return;
    setBusy(true);
    setResult(null);
    setRowErrors(null);
    setError(null);
    setProgress(0);
    try {
      const ok = await send(file, setProgress);
      setResult({ ok });
      announce(t('csv.applied'));
    } catch (err) {
      const csv = err instanceof ApiError ? err.csvErrors : null;
      if (csv) {
        setRowErrors(csv);
        announce(t('csv.rejected', { count: csv.errors.length }));
      } else {
        setError(err);
      }
    } finally {
      setBusy(false);
      setProgress(null);
    }
  };

  return (
    <div className="csv-upload" data-testid={testId}>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <div className="field">
          <label htmlFor={inputId}>{label}</label>
          <input
            id={inputId}
            type="file"
            accept=".csv,text/csv"
            data-testid={`${testId}-file`}
            disabled={busy || !allowed}
            aria-describedby={allowed ? undefined : noteId}
            onChange={(e) => {
              setFile(e.target.files?.[0] ?? null);
              setResult(null);
              setRowErrors(null);
              setError(null);
            }}
          />
        </div>
        <BusyButton type="submit" busy={busy} busyLabel={t('csv.uploading')} label={submitLabel} disabled={!file || !allowed} describedBy={allowed ? undefined : noteId} testId={`${testId}-submit`} />
      </form>
      <PermissionNote id={noteId} allowed={allowed} need="write" />
      {progress !== null ? (
        <div className="progress-row">
          <label htmlFor={`${inputId}-progress`}>{t('csv.progress')}</label>
          <progress id={`${inputId}-progress`} max={100} value={Math.round(progress * 100)} data-testid={`${testId}-progress`}>
            {Math.round(progress * 100)}%
          </progress>
          <span>{progress >= 1 ? t('csv.checking') : `${Math.round(progress * 100)}%`}</span>
        </div>
      ) : null}
      <ErrorAlert error={error} />
      {result ? (
        <div className="alert alert-success" data-testid={`${testId}-success`}>
          {renderSuccess(result.ok)}
        </div>
      ) : null}
      {rowErrors ? (
        <div className="alert alert-error" data-testid={`${testId}-errors`}>
          <p className="alert-title">{t('csv.nothingApplied')}</p>
          <p>{t('csv.rowErrors', { count: formatNumber(rowErrors.errors.length) })}</p>
          {rowErrors.truncated ? <p>{t('csv.truncated')}</p> : null}
          <button
            type="button"
            className="button button-secondary"
            data-testid={`${testId}-report`}
            onClick={() => downloadText(reportName, errorReportCsv([t('csv.col.row'), t('csv.col.column'), t('csv.col.error')], rowErrors.errors))}
          >
            {t('csv.downloadReport')}
          </button>
          <div className="table-wrap">
            <table className="table" data-testid={`${testId}-error-table`}>
              <caption className="visually-hidden">{t('csv.tableCaption')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('csv.col.row')}</th>
                  <th scope="col">{t('csv.col.column')}</th>
                  <th scope="col">{t('csv.col.error')}</th>
                </tr>
              </thead>
              <tbody>
                {rowErrors.errors.slice(0, 200).map((e, i) => (
                  <tr key={`${e.row}-${e.column}-${i}`}>
                    <td>{e.row}</td>
                    <td>
                      <code>{e.column}</code>
                    </td>
                    <td>{e.error}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {rowErrors.errors.length > 200 ? <p>{t('csv.moreInReport', { count: formatNumber(rowErrors.errors.length - 200) })}</p> : null}
        </div>
      ) : null}
    </div>
  );
}
