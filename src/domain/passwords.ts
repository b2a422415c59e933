import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { AppError } from '../errors/index.js';
import type { Tenant } from './tenant.js';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));

/** scrypt (node:crypto, RFC 7914): N=2^15, r=8, p=1 — about 50 ms and 32 MiB per hash on this class of machine. */
const PARAMS = { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEYLEN = 32;

/** `scrypt$N$r$p$salt$hash` (base64url). The parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password.normalize('NFC'), salt, KEYLEN, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** Constant-time check; false for any malformed stored value. */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const parts = stored?.split('$');
  if (!parts || parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (!N || !r || !p || N > 1 << 20) return false;
  const expected = Buffer.from(parts[5]!, 'base64url');
  const actual = await scrypt(password.normalize('NFC'), Buffer.from(parts[4]!, 'base64url'), expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** A dummy hash verified when the account does not exist, so timing does not reveal which accounts exist. */
export const DUMMY_PASSWORD_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** The tenant's password policy; throws 400 `password_policy_violation` naming what is missing. */
export function checkPasswordPolicy(policy: Tenant['passwordPolicy'], password: unknown): string {
  if (typeof password !== 'string') throw new AppError('password_policy_violation', { message: 'The password must be text.' });
  const problems: string[] = [];
  if ([...password].length < policy.minLength) problems.push(`at least ${policy.minLength} characters`);
  if (password.length > 256) problems.push('at most 256 characters');
  if (policy.requireDigit && !/\d/.test(password)) problems.push('a digit');
  if (policy.requireMixedCase && !(/[a-z]/.test(password) && /[A-Z]/.test(password))) problems.push('upper- and lower-case letters');
  if (problems.length) throw new AppError('password_policy_violation', { message: `The password needs ${problems.join(', ')}.`, details: { needs: problems } });
  return password;
}
