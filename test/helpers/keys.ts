import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../fixtures/keys/', import.meta.url));
const read = (name: string): string => readFileSync(`${dir}${name}`, 'utf8');

export interface TestIdpKeys {
  entityId: string;
  ssoUrl: string;
  privateKey: string;
  certificate: string;
}

/** Test-only key pairs (test/fixtures/keys). `attacker` is registered nowhere. */
export const idps = {
  a: { entityId: 'https://idp-a.test/saml', ssoUrl: 'https://idp-a.test/sso', privateKey: read('idp-a.key.pem'), certificate: read('idp-a.crt.pem') },
  aNext: { entityId: 'https://idp-a.test/saml', ssoUrl: 'https://idp-a.test/sso', privateKey: read('idp-a-next.key.pem'), certificate: read('idp-a-next.crt.pem') },
  b: { entityId: 'https://idp-b.test/saml', ssoUrl: 'https://idp-b.test/sso', privateKey: read('idp-b.key.pem'), certificate: read('idp-b.crt.pem') },
  attacker: { entityId: 'https://idp-a.test/saml', ssoUrl: 'https://evil.test/sso', privateKey: read('attacker.key.pem'), certificate: read('attacker.crt.pem') },
} satisfies Record<string, TestIdpKeys>;

export const derCertificate = (): Buffer => readFileSync(`${dir}idp-a.crt.der`);
