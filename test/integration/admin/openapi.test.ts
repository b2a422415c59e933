import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Router } from 'express';
import { adminRouter } from '../../../src/http/routes/admin/index.js';
import { adminOperations, buildOpenApi } from '../../../src/http/routes/admin/openapi.js';
import '../../../src/http/routes/admin/all-routes.js';
import { createGateway, type Gateway } from '../../helpers/gateway.js';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every method + path the Express admin router answers, in OpenAPI form. */
function routesOf(router: Router): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[]): void => {
    for (const layer of stack) {
      if (layer.route) {
        // `:name` is a parameter; a backslash-escaped colon is literal (`…/mdm/keys:reissue`).
        const path = layer.route.path.replace(/(?<!\\):(\w+)/g, '{$1}').replace(/\\:/g, ':');
        for (const m of Object.keys(layer.route.methods)) if (m !== '_all') out.push(`${m} ${path}`);
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((router as unknown as { stack: Layer[] }).stack);
  return out.filter((r) => r !== 'get /openapi.json').sort();
}

describe('admin API OpenAPI document', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  after(async () => gw.close());

  it('documents every admin route, and documents no route that does not exist', () => {
    const routes = routesOf(adminRouter(gw.services));
    const documented = adminOperations()
      .map((o) => `${o.method} ${o.path}`)
      .sort();
    assert.deepEqual(routes, documented);
  });

  it('is served at /admin/v1/openapi.json and docs/openapi.json is current (run `npm run openapi`)', async () => {
    const res = await gw.http.get('/admin/v1/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.1.0');
    const onDisk = JSON.parse(readFileSync(new URL('../../../docs/openapi.json', import.meta.url), 'utf8')) as unknown;
    assert.deepEqual(onDisk, buildOpenApi('https://sso.example.com'), 'docs/openapi.json is stale: run `npm run openapi`');
  });

  it('gives every JSON request body a schema taken from the route validation', () => {
    const doc = buildOpenApi('https://x') as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { type?: string } }> } }>> };
    const put = doc.paths['/domains/{domain}/sso']!.put!.requestBody!.content['application/json']!.schema as { required?: string[]; properties?: Record<string, unknown> };
    assert.ok(put.required?.includes('enabled'));
    assert.ok(put.properties && 'saml' in put.properties && 'oauth' in put.properties);
  });
});
