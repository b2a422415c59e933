import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, getSession, setUnauthorizedHandler, signOut, type Session } from './api';
import { AnnouncerProvider, ErrorAlert, Loading } from './components/ui';
import { LANGS, useI18n, type Lang, type MessageKey } from './i18n';
import { screenFor, useOperatorDomain, visibleRoutes } from './operator-domain';
import { hrefOf, ROUTES, useRoute, type Route } from './router';
import { ActivityScreen } from './screens/Activity';
import { ApiKeysScreen } from './screens/ApiKeys';
import { AuditScreen } from './screens/Audit';
import { ExternalKeysScreen } from './screens/ExternalKeys';
import { HealthScreen } from './screens/Health';
import { MembersScreen } from './screens/Members';
import { MdmScreen } from './screens/mdm';
import { OperatorScreen } from './screens/Operator';
import { OverviewScreen } from './screens/Overview';
import { ScimTokensScreen } from './screens/ScimTokens';
import { SignInScreen } from './screens/SignIn';
import { SsoScreen } from './screens/sso';

type State = { kind: 'loading' } | { kind: 'signedOut' } | { kind: 'error'; error: unknown } | { kind: 'signedIn'; session: Session & { domain: string } };

const NAV_LABEL: Record<Route, MessageKey> = {
  overview: 'nav.overview',
  sso: 'nav.sso',
  members: 'nav.members',
  'external-keys': 'nav.externalKeys',
  'api-keys': 'nav.apiKeys',
  'scim-tokens': 'scim.nav',
  mdm: 'nav.mdm',
  operator: 'nav.operator',
  health: 'nav.health',
  audit: 'nav.audit',
  activity: 'nav.activity',
};

export function App() {
  const [state, setState] = useState<State>({ kind: 'loading' });
  const load = useCallback(async () => {
    try {
      const session = await getSession();
      if (!session.domain && session.kind !== 'operator') setState({ kind: 'signedOut' });
      else setState({ kind: 'signedIn', session: { ...session, domain: session.domain ?? '' } });
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) setState({ kind: 'signedOut' });
      else setState({ kind: 'error', error: err });
    }
  }, []);
  useEffect(() => {
    setUnauthorizedHandler(() => setState({ kind: 'signedOut' }));
    void load();
    return () => setUnauthorizedHandler(null);
  }, [load]);

  return (
    <AnnouncerProvider>
      {state.kind === 'loading' ? (
        <main className="centered">
          <Loading />
        </main>
      ) : state.kind === 'signedOut' ? (
        <SignInScreen />
      ) : state.kind === 'error' ? (
        <main className="centered">
          <ErrorAlert error={state.error} />
          <button type="button" className="button button-primary" onClick={() => void load()}>
            <RetryLabel />
          </button>
        </main>
      ) : (
        <Shell session={state.session} onSignedOut={() => setState({ kind: 'signedOut' })} />
      )}
    </AnnouncerProvider>
  );
}

function RetryLabel() {
  const { t } = useI18n();
  return <>{t('common.retry')}</>;
}

export function LanguageSwitch() {
  const { t, lang, setLang } = useI18n();
  return (
    <div className="lang-switch">
      <label htmlFor="lang-select">{t('header.language')}</label>
      <select id="lang-select" data-testid="language-select" value={lang} onChange={(e) => setLang(e.target.value as Lang)}>
        {LANGS.map((l) => (
          <option key={l} value={l} lang={l}>
            {t(`lang.${l}` as MessageKey)}
          </option>
        ))}
      </select>
    </div>
  );
}

function Shell({ session, onSignedOut }: { session: Session & { domain: string }; onSignedOut: () => void }) {
  const { t } = useI18n();
  const [route, navigate] = useRoute();
  const [picked, pick] = useOperatorDomain();
  const domain = session.kind === 'operator' ? picked : session.domain;
  const screen = screenFor(route, session, domain);
  const [menuOpen, setMenuOpen] = useState(false);
  const [signingOut, setSigningOut] = useState(false);
  const [signOutError, setSignOutError] = useState<unknown>(null);
  const mainRef = useRef<HTMLElement>(null);
  const firstRender = useRef(true);

  useEffect(() => {
    document.title = `${t(NAV_LABEL[screen])} · ${t('app.title')}`;
    // Move focus to the new screen's heading for keyboard and screen-reader users (not on first load).
    if (firstRender.current) firstRender.current = false;
    else mainRef.current?.querySelector('h1')?.focus();
  }, [route, screen, t]);

  const go = (r: Route) => {
    navigate(r);
    setMenuOpen(false);
  };

  const doSignOut = async () => {
    setSigningOut(true);
    setSignOutError(null);
    try {
      await signOut();
      onSignedOut();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onSignedOut();
      else setSignOutError(err);
    } finally {
      setSigningOut(false);
    }
  };

  const roleKey: MessageKey = session.kind === 'operator' ? 'role.operator' : session.member?.role === 'super_admin' ? 'role.super_admin' : session.member?.role === 'admin' ? 'role.admin' : 'role.member';
  const props = { session, domain, navigate: go };

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        {t('header.skip')}
      </a>
      <header className="topbar">
        <button
          type="button"
          className="menu-button"
          aria-expanded={menuOpen}
          aria-controls="side-nav"
          data-testid="menu-button"
          onClick={() => setMenuOpen((o) => !o)}
        >
          <span className="menu-icon" aria-hidden="true" />
          {t('header.menu')}
        </button>
        <div className="brand">
          <span className="brand-name">{t('app.name')}</span>
          <span className="tenant" data-testid="tenant-domain">
            {domain || t('operator.noDomain')}
          </span>
        </div>
        <div className="who" data-testid="signed-in-as">
          {/* The operator is no member and no API key: the role badge says who is signed in. */}
          {session.kind === 'operator' ? null : <span className="who-name">{session.member?.name ?? session.member?.account ?? t('role.key')}</span>}
          <span className="badge badge-role" data-testid="role-badge">
            {t(roleKey)}
          </span>
        </div>
        <LanguageSwitch />
        <button type="button" className="button button-secondary" onClick={() => void doSignOut()} disabled={signingOut} data-testid="sign-out">
          {signingOut ? t('common.working') : t('header.signOut')}
        </button>
      </header>
      {signOutError ? <ErrorAlert error={signOutError} /> : null}
      <div className="layout">
        <nav id="side-nav" className={`sidenav${menuOpen ? ' open' : ''}`} aria-label={t('nav.label')}>
          <ul>
            {visibleRoutes(ROUTES, session, domain).map((r) => (
              <li key={r}>
                <a
                  href={hrefOf(r)}
                  aria-current={screen === r ? 'page' : undefined}
                  data-testid={`nav-${r}`}
                  onClick={(e) => {
                    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                    e.preventDefault();
                    go(r);
                  }}
                >
                  {t(NAV_LABEL[r])}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" className="content" ref={mainRef}>
          {screen === 'overview' ? <OverviewScreen {...props} /> : null}
          {screen === 'sso' ? <SsoScreen {...props} /> : null}
          {screen === 'members' ? <MembersScreen {...props} /> : null}
          {screen === 'external-keys' ? <ExternalKeysScreen {...props} /> : null}
          {screen === 'api-keys' ? <ApiKeysScreen {...props} /> : null}
          {screen === 'scim-tokens' ? <ScimTokensScreen {...props} /> : null}
          {screen === 'mdm' ? <MdmScreen {...props} /> : null}
          {screen === 'audit' ? <AuditScreen {...props} /> : null}
          {screen === 'activity' ? <ActivityScreen {...props} /> : null}
          {screen === 'operator' ? <OperatorScreen {...props} onOpenDomain={pick} /> : null}
          {screen === 'health' ? <HealthScreen {...props} onOpenDomain={pick} /> : null}
        </main>
      </div>
    </div>
  );
}

export interface ScreenProps {
  session: Session;
  domain: string;
  navigate: (route: Route) => void;
}
