import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { createGateway, type Gateway } from '../../helpers/gateway.js';
import { mdmAdmin, tenant } from './helpers.js';

/** M-3: the managed-app-config key name is the deployment's (config `mdm.managedAppConfigKey`). */
describe('the managed-app-config key name is configurable per deployment', () => {
  const KEY = 'AcmeMdmAuthCode';
  let gw: Gateway;
  let api: ReturnType<typeof mdmAdmin>;
  before(async () => {
    gw = await createGateway({ overrides: { mdm: { managedAppConfigKey: KEY } } });
    api = mdmAdmin(gw);
    await gw.services.tenants.save(tenant('acme.example', 'standard'));
  });
  after(async () => gw.close());

  it('every admin answer that names it (the console reads it from there) gives the configured name', async () => {
    const settings = await api.get('acme.example');
    assert.equal(settings.status, 200, settings.text);
    assert.equal(settings.body.configKey, KEY);
    const on = await api.put('acme.example', { mode: 'external' });
    assert.equal(on.status, 200, on.text);
    assert.deepEqual([on.body.configKey, on.body.valueType], [KEY, 'String']);
    const list = await api.list('acme.example');
    assert.equal(list.body.configKey, KEY);
    const added = await api.add('acme.example');
    assert.equal(added.status, 201, added.text);
    assert.equal(added.body.configKey, KEY);
    const reissued = await api.reissue('acme.example');
    assert.equal(reissued.body.configKey, KEY);
    const revealed = await api.reveal('acme.example', reissued.body.id as string);
    assert.equal(revealed.body.configKey, KEY);
    assert.ok(!JSON.stringify([settings.body, on.body, list.body, added.body, reissued.body, revealed.body]).includes('LineworksAuthCode'));
  });

  it('defaults to LineworksAuthCode, and refuses an empty or unsafe name at boot', () => {
    assert.equal(loadConfig({ env: {} }).config.mdm.managedAppConfigKey, 'LineworksAuthCode');
    for (const bad of ['', ' ', 'has space', 'a"quote', '<script>', 'x'.repeat(129), '-leading', 'ünïcode', 42]) {
      assert.throws(() => loadConfig({ env: {}, overrides: { mdm: { managedAppConfigKey: bad } } }), /mdm\.managedAppConfigKey/, JSON.stringify(bad));
    }
    for (const good of ['LineworksAuthCode', 'com.example.mdm.code', 'A', 'auth_code-2']) {
      assert.equal(loadConfig({ env: {}, overrides: { mdm: { managedAppConfigKey: good } } }).config.mdm.managedAppConfigKey, good);
    }
  });
});
