import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import scim2 from '@braveulysses/scim2';
import { patchRequest, replaceOperation, addOperation } from '@braveulysses/scim2/dist/Patch.js';
import SCIMMY from 'scimmy';
import { createGateway, type Gateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/redis.js';
import { issueScimToken, plainTenant } from '../../helpers/scim.js';

const DOMAIN = 'client.example';

/**
 * A SCIM client the project did not write drives a full create / update / deactivate / delete cycle:
 * request bodies are built by the libraries — SCIMMY (User resources and filters, RFC 7643 schemas) and
 * @braveulysses/scim2 (PatchOp messages) — sent over HTTP to a listening gateway, and every answer is read
 * back through SCIMMY's own schema and message classes (which throw on a non-conforming body) and
 * @braveulysses/scim2's Resource (value-filter paths).
 */
describe('a third-party SCIM client (SCIMMY + @braveulysses/scim2) against /scim/v2', () => {
  let gw: Gateway;
  let server: Server;
  let base: string;
  let token: string;

  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(plainTenant(DOMAIN));
    token = (await issueScimToken(gw, DOMAIN)).token;
    const port = await freePort();
    server = createServer(gw.app);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    base = `http://127.0.0.1:${port}/scim/v2/${DOMAIN}`;
  });
  after(async () => {
    server.close();
    await gw.close();
  });

  /** The transport: Node's fetch with the library-built body as is. */
  async function send(method: string, path: string, body?: string): Promise<{ status: number; text: string; etag: string | null }> {
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json', accept: 'application/scim+json' }, body });
    return { status: res.status, text: await res.text(), etag: res.headers.get('etag') };
  }

  /** Reads a User answer through SCIMMY's User schema (outbound direction: it checks what a service provider returns). */
  const asUser = (text: string): SCIMMY.Schemas.User => new SCIMMY.Schemas.User(JSON.parse(text), 'out');

  it('runs create → find → update → deactivate → delete', async () => {
    // Create: SCIMMY builds the inbound User resource (its coercion adds the schema URN and drops what the schema lacks).
    const newUser = new SCIMMY.Schemas.User(
      { userName: 'grace@client.example', externalId: 'emp-grace', name: { givenName: 'Grace', familyName: 'Hopper' }, emails: [{ value: 'grace@client.example', type: 'work', primary: true }], active: true },
      'in',
    );
    const created = await send('POST', '/Users', JSON.stringify(newUser));
    assert.equal(created.status, 201, created.text);
    const user = asUser(created.text);
    assert.equal(user.userName, 'grace@client.example');
    assert.equal(user.externalId, 'emp-grace');
    const id = user.id;

    // Find: SCIMMY builds the filter expression; the answer is read as a SCIMMY ListResponse.
    const filter = new SCIMMY.Types.Filter({ userName: ['eq', 'grace@client.example'] }).expression;
    const found = await send('GET', `/Users?filter=${encodeURIComponent(filter)}`);
    assert.equal(found.status, 200);
    const list = new SCIMMY.Messages.ListResponse(JSON.parse(found.text) as SCIMMY.Messages.ListResponse);
    assert.equal(list.totalResults, 1);
    assert.equal(asUser(JSON.stringify(list.Resources[0])).id, id);

    // Update: @braveulysses/scim2 builds the PatchOp; SCIMMY accepts it as a valid PatchOp message too.
    const update = patchRequest(replaceOperation('name.familyName', 'Murray Hopper'), addOperation('title', 'Rear Admiral'));
    assert.doesNotThrow(() => new SCIMMY.Messages.PatchOp(JSON.parse(update) as ConstructorParameters<typeof SCIMMY.Messages.PatchOp>[0]));
    const patched = await send('PATCH', `/Users/${id}`, update);
    assert.equal(patched.status, 200, patched.text);
    const resource = scim2.Resource.fromJSON(patched.text);
    assert.equal(resource.get('name.familyName'), 'Murray Hopper');
    assert.equal(resource.get('title'), 'Rear Admiral');
    assert.equal((resource.get('emails[type eq "work"]') as { value: string }).value, 'grace@client.example');
    assert.equal(patched.etag, asUser(patched.text).meta?.version);
    assert.equal((await gw.services.members.findById(DOMAIN, id))?.name, 'Grace Murray Hopper');

    // Deactivate. (The library drops a falsy `value` from an operation it builds — replaceOperation('active', false)
    // has no value, which the gateway refuses as invalidSyntax — so the client replaces with a value object.)
    const valueless = await send('PATCH', `/Users/${id}`, patchRequest(replaceOperation('active', false)));
    assert.equal(valueless.status, 400);
    assert.equal((JSON.parse(valueless.text) as { scimType: string }).scimType, 'invalidSyntax');
    const off = await send('PATCH', `/Users/${id}`, patchRequest(replaceOperation(null, { active: false })));
    assert.equal(off.status, 200, off.text);
    assert.equal(asUser(off.text).active, false);
    assert.equal((await gw.services.members.findById(DOMAIN, id))?.status, 'suspended');

    // Delete; afterwards the read is a SCIM error that SCIMMY's ErrorResponse accepts.
    assert.equal((await send('DELETE', `/Users/${id}`)).status, 204);
    const gone = await send('GET', `/Users/${id}`);
    assert.equal(gone.status, 404);
    const error = JSON.parse(gone.text) as { schemas: string[]; status: string; detail: string };
    assert.deepEqual(error.schemas, [SCIMMY.Messages.ErrorResponse.id]);
    assert.equal(new SCIMMY.Messages.ErrorResponse({ status: Number(error.status) as 404, detail: error.detail }).status, '404');
    assert.equal(await gw.services.members.findById(DOMAIN, id), null);
  });

  it("the discovery documents pass SCIMMY's ServiceProviderConfig and ResourceType schemas", async () => {
    const spc = await send('GET', '/ServiceProviderConfig');
    assert.doesNotThrow(() => new SCIMMY.Schemas.ServiceProviderConfig(JSON.parse(spc.text)));
    const types = JSON.parse((await send('GET', '/ResourceTypes')).text) as { Resources: unknown[] };
    for (const t of types.Resources) assert.doesNotThrow(() => new SCIMMY.Schemas.ResourceType(t));
  });
});
