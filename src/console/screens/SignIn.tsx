import { useId, useState } from 'react';
import { LanguageSwitch } from '../App';
import { useI18n } from '../i18n';

const DOMAIN_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i;

/**
 * Sign-in through the gateway's own login (the console eats our own login): the form navigates to
 * GET /console/auth/start?domain=…&method=sso|password, which redirects to /d/login or /d/password-login
 * (and from there to the tenant's IdP).
 */
export function SignInScreen() {
  const { t } = useI18n();
  const id = useId();
  const params = new URLSearchParams(location.search);
  const signInError = params.get('signInError');
  const [domain, setDomain] = useState(() => params.get('domain') ?? localStorage.getItem('idpb.console.domain') ?? '');
  const [invalid, setInvalid] = useState(false);
  const errorKey = signInError === 'not_admin' ? 'signIn.error.not_admin' : signInError === 'not_signed_in' ? 'signIn.error.not_signed_in' : signInError ? 'signIn.error.other' : null;

  return (
    <div className="signin-page">
      <header className="signin-header">
        <span className="brand-name">{t('app.name')}</span>
        <LanguageSwitch />
      </header>
      <main className="signin-card" id="main">
        <h1>{t('signIn.title')}</h1>
        <p>{t('signIn.intro')}</p>
        {errorKey ? (
          <div className="alert alert-error" role="alert" data-testid="sign-in-error" data-error-code={signInError ?? undefined}>
            <p className="alert-title">{t(errorKey)}</p>
          </div>
        ) : null}
        <form
          method="get"
          action="/console/auth/start"
          noValidate
          onSubmit={(e) => {
            // Navigate rather than submit: the start redirects on to the tenant's IdP, another origin, and the
            // console's CSP (form-action 'self') blocks a form submission whose redirects leave the origin.
            e.preventDefault();
            const value = domain.trim().toLowerCase();
            if (!DOMAIN_RE.test(value)) {
              setInvalid(true);
              document.getElementById(`${id}-domain`)?.focus();
              return;
            }
            try {
              localStorage.setItem('idpb.console.domain', value);
            } catch {
              // not remembered
            }
            const submitter = (e.nativeEvent).submitter as HTMLButtonElement | null;
            const method = submitter?.value === 'password' ? 'password' : 'sso';
            window.location.assign(`/console/auth/start?${new URLSearchParams({ domain: value, method }).toString()}`);
          }}
        >
          <div className={`field${invalid ? ' field-invalid' : ''}`}>
            <label htmlFor={`${id}-domain`}>{t('signIn.domain')}</label>
            <p className="hint" id={`${id}-hint`}>
              {t('signIn.domainHint')}
            </p>
            <input
              id={`${id}-domain`}
              name="domain"
              type="text"
              inputMode="url"
              autoComplete="organization"
              autoCapitalize="none"
              spellCheck={false}
              required
              value={domain}
              data-testid="sign-in-domain"
              aria-invalid={invalid || undefined}
              aria-describedby={`${id}-hint${invalid ? ` ${id}-error` : ''}`}
              onChange={(e) => {
                setDomain(e.target.value);
                setInvalid(false);
              }}
            />
            {invalid ? (
              <p className="field-error" id={`${id}-error`}>
                {t('signIn.domainInvalid')}
              </p>
            ) : null}
          </div>
          <button type="submit" name="method" value="sso" className="button button-primary button-wide" data-testid="sign-in-sso">
            {t('signIn.sso')}
          </button>
          <section className="breakglass" aria-labelledby={`${id}-bg`}>
            <h2 id={`${id}-bg`}>{t('signIn.breakGlassTitle')}</h2>
            <p>{t('signIn.breakGlassBody')}</p>
            <button type="submit" name="method" value="password" className="button button-secondary" data-testid="sign-in-password">
              {t('signIn.password')}
            </button>
          </section>
        </form>
        <section className="breakglass" aria-labelledby={`${id}-op`}>
          <h2 id={`${id}-op`}>{t('signIn.operatorTitle')}</h2>
          <p>{t('signIn.operatorBody')}</p>
          <a className="button button-secondary" href="/console/auth/operator" data-testid="sign-in-operator">
            {t('signIn.operatorLink')}
          </a>
        </section>
      </main>
    </div>
  );
}
