import { createContext, useCallback, useContext, useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { ApiError } from '../api';
import { useI18n, type MessageKey } from '../i18n';

// --- status announcements (one polite live region for the whole console) ---------------------------

const AnnounceContext = createContext<(message: string) => void>(() => undefined);

export function AnnouncerProvider({ children }: { children: ReactNode }) {
  const [message, setMessage] = useState('');
  const announce = useCallback((text: string) => {
    // Cleared first so that the same message twice is read twice.
    setMessage('');
    window.setTimeout(() => setMessage(text), 50);
  }, []);
  return (
    <AnnounceContext.Provider value={announce}>
      {children}
      <div className="visually-hidden" role="status" aria-live="polite" data-testid="live-status">
        {message}
      </div>
    </AnnounceContext.Provider>
  );
}

export function useAnnounce(): (message: string) => void {
  return useContext(AnnounceContext);
}

// --- buttons ---------------------------------------------------------------------------------------

export function BusyButton({
  busy,
  label,
  busyLabel,
  disabled,
  kind = 'primary',
  type = 'button',
  onClick,
  describedBy,
  testId,
}: {
  busy: boolean;
  label: string;
  busyLabel?: string;
  disabled?: boolean;
  kind?: 'primary' | 'secondary' | 'danger';
  type?: 'button' | 'submit';
  onClick?: () => void;
  describedBy?: string;
  testId?: string;
}) {
  const { t } = useI18n();
  return (
    <button
      type={type}
      className={`button button-${kind}`}
      disabled={busy || disabled}
      aria-busy={busy || undefined}
      aria-describedby={describedBy}
      onClick={onClick}
      data-testid={testId}
    >
      {busy ? <span className="spinner" aria-hidden="true" /> : null}
      {busy ? (busyLabel ?? t('common.working')) : label}
    </button>
  );
}

/** Why a button is disabled for this admin (the server still refuses with 403 if asked). */
export function PermissionNote({ id, allowed, need }: { id: string; allowed: boolean; need: 'write' | 'super' }) {
  const { t } = useI18n();
  if (allowed) return null;
  return (
    <p id={id} className="note" data-testid={`permission-note-${need}`}>
      {t(need === 'super' ? 'perm.needSuper' : 'perm.needWrite')}
    </p>
  );
}

// --- errors ----------------------------------------------------------------------------------------

const KNOWN_CODES = [
  'forbidden',
  'csrf_failed',
  'unauthorized',
  'validation_failed',
  'csv_invalid',
  'conflict',
  'network_error',
  'not_found',
  'idp_metadata_invalid',
  'metadata_fetch_failed',
  'payload_too_large',
  'store_unavailable',
] as const;

export function errorHeadline(t: (k: MessageKey) => string, err: unknown): string {
  if (err instanceof ApiError) {
    const code = (KNOWN_CODES as readonly string[]).includes(err.code) ? err.code : 'generic';
    return t(`error.${code}` as MessageKey);
  }
  return t('error.generic');
}

export function ErrorAlert({ error, testId = 'error-alert' }: { error: unknown; testId?: string }) {
  const { t } = useI18n();
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  return (
    <div className="alert alert-error" role="alert" data-testid={testId} data-error-code={api?.code}>
      <p className="alert-title">{errorHeadline(t, error)}</p>
      {api?.message ? <p className="alert-detail">{api.message}</p> : null}
      {api?.requestId ? <p className="alert-ref">{t('error.reference', { id: api.requestId })}</p> : null}
    </div>
  );
}

// --- form fields -----------------------------------------------------------------------------------

export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: string;
  error?: string;
  children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: true }) => ReactNode;
}) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [hint ? hintId : '', error ? errorId : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {hint ? (
        <p id={hintId} className="hint">
          {hint}
        </p>
      ) : null}
      {children({ id, 'aria-describedby': describedBy, ...(error ? { 'aria-invalid': true as const } : {}) })}
      {error ? (
        <p id={errorId} className="field-error" data-testid="field-error">
          {error}
        </p>
      ) : null}
    </div>
  );
}

// --- dialog ----------------------------------------------------------------------------------------

/**
 * A modal <dialog>: showModal() makes the rest of the page inert (focus stays inside), Escape closes
 * (unless `busy`), and focus goes back to what had it before.
 */
export function Dialog({
  open,
  title,
  onClose,
  busy = false,
  children,
  footer,
  testId,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  busy?: boolean;
  children: ReactNode;
  footer?: ReactNode;
  testId?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const returnTo = useRef<HTMLElement | null>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      returnTo.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
      dialog.showModal();
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open]);
  useEffect(
    () => () => {
      if (returnTo.current?.isConnected) returnTo.current.focus();
    },
    [],
  );
  useEffect(() => {
    if (!open && returnTo.current) {
      const target = returnTo.current;
      returnTo.current = null;
      if (target.isConnected) target.focus();
    }
  }, [open]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      data-testid={testId}
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onClose();
      }}
    >
      {open ? (
        <div className="dialog-body">
          <h2 id={titleId} className="dialog-title">
            {title}
          </h2>
          {children}
          {footer ? <div className="dialog-footer">{footer}</div> : null}
        </div>
      ) : null}
    </dialog>
  );
}

export function ConfirmDialog({
  open,
  title,
  body,
  confirmLabel,
  danger,
  busy,
  error,
  onConfirm,
  onClose,
  testId,
}: {
  open: boolean;
  title: string;
  body: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  busy: boolean;
  error?: unknown;
  onConfirm: () => void;
  onClose: () => void;
  testId?: string;
}) {
  const { t } = useI18n();
  return (
    <Dialog
      open={open}
      title={title}
      onClose={onClose}
      busy={busy}
      testId={testId}
      footer={
        <>
          <button type="button" className="button button-secondary" onClick={onClose} disabled={busy}>
            {t('common.cancel')}
          </button>
          <BusyButton busy={busy} kind={danger ? 'danger' : 'primary'} label={confirmLabel} onClick={onConfirm} testId="confirm-button" />
        </>
      }
    >
      {body}
      <ErrorAlert error={error} />
    </Dialog>
  );
}

// --- copy ------------------------------------------------------------------------------------------

async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall back below
  }
  // Fallback for http:// and older browsers: a selected off-screen textarea and execCommand('copy').
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'copy-buffer';
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

export function CopyButton({ value, what, testId }: { value: string; what: string; testId?: string }) {
  const { t } = useI18n();
  const announce = useAnnounce();
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return;
    const timer = window.setTimeout(() => setState('idle'), 2500);
    return () => window.clearTimeout(timer);
  }, [state]);
  return (
    <span className="copy">
      <button
        type="button"
        className="button button-small button-secondary"
        aria-label={t('copy.label', { what })}
        data-testid={testId}
        onClick={() => {
          void copyText(value).then((ok) => {
            setState(ok ? 'copied' : 'failed');
            announce(ok ? t('copy.done', { what }) : t('copy.failed'));
          });
        }}
      >
        {t('copy.button')}
      </button>
      <span className={`copy-status copy-${state}`} aria-hidden="true">
        {state === 'copied' ? t('copy.copied') : state === 'failed' ? t('copy.failed') : ''}
      </span>
    </span>
  );
}

// --- misc ------------------------------------------------------------------------------------------

export function EmptyState({ title, body, children }: { title: string; body?: string; children?: ReactNode }) {
  return (
    <div className="empty" data-testid="empty-state">
      <p className="empty-title">{title}</p>
      {body ? <p>{body}</p> : null}
      {children}
    </div>
  );
}

export function Loading() {
  const { t } = useI18n();
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" />
      {t('common.loading')}
    </p>
  );
}

export function usePolling(callback: () => void | Promise<void>, intervalMs: number, active: boolean): void {
  const saved = useRef(callback);
  useEffect(() => {
    saved.current = callback;
  }, [callback]);
  useEffect(() => {
    if (!active) return;
    let stopped = false;
    let timer = 0;
    const tick = async () => {
      try {
        await saved.current();
      } finally {
        if (!stopped) timer = window.setTimeout(() => void tick(), intervalMs);
      }
    };
    timer = window.setTimeout(() => void tick(), intervalMs);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [active, intervalMs]);
}
