import { z } from 'zod';

/** S-26: ≤100 chars, none of `% \ # / ?`, no control characters; case-sensitive, unique per tenant. */
export const externalKeySchema = z
  .string()
  .min(1)
  .max(100)
  .refine((v) => !/[%\\#/?\u0000-\u001f\u007f]/.test(v), 'must not contain % \\ # / ? or control characters');

export const accountSchema = z
  .string()
  .max(254)
  .regex(/^[^\s@]+@[^\s@]+$/, 'must be an account such as user@example.com')
  .transform((v) => v.toLowerCase());

export const memberStatusSchema = z.enum(['pending', 'in_use', 'unapproved', 'suspended']);
export const memberRoleSchema = z.enum(['super_admin', 'admin', 'member']);

/** A third-party app password (mail clients …): only its hash is kept. */
export const appPasswordSchema = z.strictObject({
  id: z.string(),
  name: z.string().min(1).max(100),
  hash: z.string(),
  createdAt: z.number(),
});
export type AppPassword = z.infer<typeof appPasswordSchema>;

export const memberSchema = z.strictObject({
  id: z.string().min(1).max(64),
  domain: z.string(),
  account: accountSchema,
  externalKey: externalKeySchema.optional(),
  name: z.string().min(1).max(200),
  role: memberRoleSchema.default('member'),
  status: memberStatusSchema.default('in_use'),
  /** scrypt hash (see domain/passwords.ts); never returned by any API. */
  passwordHash: z.string().optional(),
  appPasswords: z.array(appPasswordSchema).default([]),
  createdAt: z.number().optional(),
});
export type Member = z.infer<typeof memberSchema>;
export type MemberStatus = z.infer<typeof memberStatusSchema>;
