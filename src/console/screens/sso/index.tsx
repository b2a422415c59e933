import { useCallback, useEffect, useState } from 'react';
import { api, type SsoView } from '../../api';
import type { ScreenProps } from '../../App';
import { ErrorAlert, Loading } from '../../components/ui';
import { useI18n } from '../../i18n';
import { CertificatesPanel } from './Certificates';
import { MetadataPanel } from './MetadataPanel';
import { SettingsForm } from './SettingsForm';
import { SpPanel } from './SpDetails';
import { StatusPanel } from './StatusPanel';
import { UserKeyPanel } from './UserKey';

export function SsoScreen({ domain, session }: ScreenProps) {
  const { t } = useI18n();
  const [sso, setSso] = useState<SsoView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const reload = useCallback(async () => {
    try {
      setSso(await api.sso(domain));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [domain]);
  useEffect(() => {
    void reload();
  }, [reload]);

  return (
    <>
      <h1 tabIndex={-1}>{t('sso.title')}</h1>
      <ErrorAlert error={error} />
      {!sso && !error ? <Loading /> : null}
      {sso ? (
        <>
          <StatusPanel sso={sso} domain={domain} canWrite={session.permissions.write} canSuper={session.permissions.super} onChanged={reload} />
          <SettingsForm key={JSON.stringify([sso.type, sso.oauth?.profile, sso.saml?.idpEntityId, sso.webLoginUrl])} sso={sso} domain={domain} canWrite={session.permissions.write} onSaved={setSso} />
          {sso.type === 'saml' ? <MetadataPanel domain={domain} canWrite={session.permissions.write} onImported={reload} /> : null}
          {sso.type === 'saml' ? <CertificatesPanel sso={sso} domain={domain} canWrite={session.permissions.write} onSaved={setSso} /> : null}
          <SpPanel sso={sso} domain={domain} />
          <UserKeyPanel sso={sso} domain={domain} canWrite={session.permissions.write} onSaved={setSso} />
        </>
      ) : null}
    </>
  );
}
