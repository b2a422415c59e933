import { useCallback, useEffect, useState } from 'react';
import type { ScreenProps } from '../../App';
import { mdmApi, type BuiltinException, type IssuedKey, type MdmKey, type MdmSettings } from '../../api-mdm';
import { ErrorAlert, Loading } from '../../components/ui';
import { useI18n, type MessageKey } from '../../i18n';
import { BuiltinExceptions } from './Exceptions';
import { KeyList } from './Keys';
import { ManagedConfig } from './ManagedConfig';
import { SyncSwitch, RestrictOtherDomains } from './Setup';

export interface MdmData {
  settings: MdmSettings;
  keys: MdmKey[];
  exceptions: BuiltinException[];
}

export interface MdmPartProps {
  domain: string;
  data: MdmData;
  canSuper: boolean;
  reload: () => Promise<void>;
  /** A value just issued (switching on, a new key, a reissue, a replacement): shown in the managed app configuration. */
  onIssued: (key: IssuedKey) => void;
}

/** Mobile security › third-party MDM (docs/spec.md §8, §9). */
export function MdmScreen({ domain, session }: ScreenProps) {
  const { t } = useI18n();
  const canSuper = session.permissions.super;
  const [data, setData] = useState<MdmData | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [issued, setIssued] = useState<IssuedKey | null>(null);

  const reload = useCallback(async () => {
    try {
      const [settings, keys, exceptions] = await Promise.all([mdmApi.settings(domain), mdmApi.keys(domain), mdmApi.exceptions(domain)]);
      setData({ settings, keys: keys.keys, exceptions: exceptions.exceptions });
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [domain]);
  useEffect(() => {
    void reload();
  }, [reload]);

  const on = data?.settings.mode === 'external';
  const part: MdmPartProps | null = data ? { domain, data, canSuper, reload, onIssued: setIssued } : null;
  const modeKey: MessageKey | null = data ? (`mdm.mode.${data.settings.mode}` as MessageKey) : null;

  return (
    <>
      <p className="note">{t('mdm.section')}</p>
      <h1 tabIndex={-1}>{t('mdm.title')}</h1>
      <p className="lead">{t('mdm.intro')}</p>
      <ErrorAlert error={error} />
      {!data && !error ? <Loading /> : null}
      {data && part && modeKey ? (
        !data.settings.available ? (
          <div className="alert alert-warn" role="note" data-testid="mdm-unavailable">
            <p className="alert-title">{t('mdm.unavailable.title')}</p>
            <p>{t('mdm.unavailable.body', { plan: t(`plan.${data.settings.plan}` as MessageKey) })}</p>
          </div>
        ) : (
          <>
            {!canSuper ? (
              <p className="note" data-testid="mdm-read-only">
                {t('mdm.readOnly')}
              </p>
            ) : null}
            <p className="note" data-testid="mdm-excludes-builtin">
              {t('mdm.excludesBuiltin')}
            </p>
            <p data-testid="mdm-mode">
              {t('mdm.currentMode')} <strong>{t(modeKey)}</strong>
            </p>
            <SyncSwitch {...part} />
            {on ? (
              <>
                <ManagedConfig {...part} issued={issued} />
                <KeyList {...part} />
                <RestrictOtherDomains {...part} />
              </>
            ) : null}
            <BuiltinExceptions {...part} />
          </>
        )
      ) : null}
    </>
  );
}
