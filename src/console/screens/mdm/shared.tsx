import { useId } from 'react';
import type { MdmSettings } from '../../api-mdm';
import { Field } from '../../components/ui';
import { useI18n, type Translate } from '../../i18n';

/** The API's rule for a custom value, checked as it is typed (the server checks it again). */
export function valueProblem(t: Translate, value: string, rules: MdmSettings['rules']): string | undefined {
  const r = rules.customValue;
  if (value.length < r.minLength) return t('mdm.value.tooShort', { min: r.minLength });
  if (value.length > r.maxLength) return t('mdm.value.tooLong', { max: r.maxLength });
  if (!new RegExp(r.pattern).test(value)) return t('mdm.value.badChars');
  return undefined;
}

/** Generated or custom value: the choice and, for custom, the field with its inline check. */
export function ValueChoice({
  rules,
  custom,
  value,
  onCustom,
  onValue,
  disabled,
  testId,
}: {
  rules: MdmSettings['rules'];
  custom: boolean;
  value: string;
  onCustom: (custom: boolean) => void;
  onValue: (value: string) => void;
  disabled?: boolean;
  testId: string;
}) {
  const { t } = useI18n();
  const id = useId();
  const problem = custom && value !== '' ? valueProblem(t, value, rules) : undefined;
  return (
    <>
      <fieldset className="radios" disabled={disabled}>
        <legend>{t('mdm.value.legend')}</legend>
        <div className="radio">
          <input id={`${id}-auto`} type="radio" checked={!custom} onChange={() => onCustom(false)} data-testid={`${testId}-auto`} />
          <label htmlFor={`${id}-auto`}>{t('mdm.value.auto')}</label>
        </div>
        <div className="radio">
          <input id={`${id}-custom`} type="radio" checked={custom} onChange={() => onCustom(true)} data-testid={`${testId}-custom`} />
          <label htmlFor={`${id}-custom`}>{t('mdm.value.custom')}</label>
        </div>
      </fieldset>
      {custom ? (
        <Field label={t('mdm.value.customLabel')} hint={t('mdm.value.rules', { min: rules.customValue.minLength, max: rules.customValue.maxLength })} error={problem}>
          {(props) => (
            <input {...props} type="text" value={value} autoComplete="off" spellCheck={false} disabled={disabled} onChange={(e) => onValue(e.target.value)} data-testid={`${testId}-value`} />
          )}
        </Field>
      ) : null}
    </>
  );
}

/** Whether a value choice can be sent as it stands. */
export function valueReady(t: Translate, custom: boolean, value: string, rules: MdmSettings['rules']): boolean {
  return !custom || valueProblem(t, value, rules) === undefined;
}
