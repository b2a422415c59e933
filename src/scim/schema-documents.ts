/** SCIM 2.0 URNs and the discovery documents (RFC 7643 §5–§8, RFC 7644 §4) of `/scim/v2/{domain}`. */

export const URN = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  enterprise: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patchOp: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

/** Results one list request returns at most (`count` above it is lowered to it, RFC 7644 §3.4.2.4). */
export const MAX_PAGE = 1000;
/** Operations one PATCH may carry, and member values in all of them together. */
export const MAX_PATCH_OPERATIONS = 1000;
export const MAX_PATCH_MEMBERS = 10_000;

export function serviceProviderConfig(base: string): Record<string, unknown> {
  return {
    schemas: [URN.serviceProviderConfig],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_PAGE },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: true },
    authenticationSchemes: [
      { type: 'oauthbearertoken', name: 'OAuth Bearer Token', description: 'A per-domain SCIM token issued through the admin API', primary: true },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}

export function resourceTypes(base: string): Array<Record<string, unknown>> {
  return [
    {
      schemas: [URN.resourceType],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      description: 'A member of the domain',
      schema: URN.user,
      schemaExtensions: [{ schema: URN.enterprise, required: false }],
      meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/User` },
    },
    {
      schemas: [URN.resourceType],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      description: 'A group of members of the domain',
      schema: URN.group,
      meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/Group` },
    },
  ];
}

type Attr = Record<string, unknown>;
const attr = (name: string, extra: Partial<Attr> = {}): Attr => ({
  name,
  type: 'string',
  multiValued: false,
  required: false,
  caseExact: false,
  mutability: 'readWrite',
  returned: 'default',
  uniqueness: 'none',
  ...extra,
});
const complex = (name: string, subAttributes: Attr[], extra: Partial<Attr> = {}): Attr => attr(name, { type: 'complex', subAttributes, ...extra });
const multi = (name: string): Attr =>
  complex(name, [attr('value'), attr('display'), attr('type'), attr('primary', { type: 'boolean' })], { multiValued: true });

export function schemas(base: string): Array<Record<string, unknown>> {
  const doc = (id: string, name: string, description: string, attributes: Attr[]): Record<string, unknown> => ({
    schemas: [URN.schema],
    id,
    name,
    description,
    attributes,
    meta: { resourceType: 'Schema', location: `${base}/Schemas/${id}` },
  });
  return [
    doc(URN.user, 'User', 'A member of the domain: userName is the account, externalId the external key, active the status', [
      attr('userName', { required: true, uniqueness: 'server' }),
      complex('name', [attr('formatted'), attr('familyName'), attr('givenName'), attr('middleName'), attr('honorificPrefix'), attr('honorificSuffix')]),
      attr('displayName'),
      attr('nickName'),
      attr('title'),
      attr('userType'),
      attr('preferredLanguage'),
      attr('locale'),
      attr('timezone'),
      attr('active', { type: 'boolean' }),
      multi('emails'),
      multi('phoneNumbers'),
      complex('groups', [attr('value', { mutability: 'readOnly' }), attr('display', { mutability: 'readOnly' })], { multiValued: true, mutability: 'readOnly' }),
    ]),
    doc(URN.group, 'Group', 'A group of members of the domain', [
      attr('displayName', { required: true, uniqueness: 'server' }),
      complex('members', [attr('value', { mutability: 'immutable' }), attr('display', { mutability: 'readOnly' }), attr('type', { mutability: 'immutable' })], { multiValued: true }),
    ]),
    doc(URN.enterprise, 'EnterpriseUser', 'Enterprise user', [
      attr('employeeNumber'),
      attr('costCenter'),
      attr('organization'),
      attr('division'),
      attr('department'),
      complex('manager', [attr('value'), attr('displayName', { mutability: 'readOnly' })]),
    ]),
  ];
}
