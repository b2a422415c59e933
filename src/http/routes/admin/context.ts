import type { Request, Response } from 'express';
import type { AdminPrincipal } from '../../../admin/api-keys.js';
import { TenantRepository } from '../../../domain/tenants.js';
import type { Tenant } from '../../../domain/tenant.js';
import { AppError } from '../../../errors/index.js';
import type { AuditEvent } from '../../../observability/audit.js';
import type { Services } from '../../../services.js';

declare module 'express-serve-static-core' {
  interface Locals {
    admin?: AdminPrincipal;
  }
}

export function principalOf(res: Response): AdminPrincipal {
  if (!res.locals.admin) throw new AppError('unauthorized');
  return res.locals.admin;
}

/** `operator`, `admin-key:<id>` or `member:<id>` (a console session): the actor of admin audit events. */
export function actorOf(res: Response): string {
  const p = principalOf(res);
  if (p.kind === 'operator') return 'operator';
  return p.kind === 'tenant' ? `admin-key:${p.keyId}` : `member:${p.memberId}`;
}

/**
 * What a principal may do: `read` (everyone), `write` (the operator, a full-scope key, an admin or super
 * admin), `super` (the operator, a full-scope key, a super admin): switching SSO on or off, MDM
 * settings, API keys, the super admin role.
 */
export type AdminPermission = 'read' | 'write' | 'super';

export function permissionsOf(p: AdminPrincipal): Record<AdminPermission, boolean> {
  if (p.kind === 'operator') return { read: true, write: true, super: true };
  if (p.kind === 'tenant') return { read: true, write: p.scope === 'full', super: p.scope === 'full' };
  return { read: true, write: true, super: p.role === 'super_admin' };
}

const REFUSALS: Record<Exclude<AdminPermission, 'read'>, string> = {
  write: 'This key is read-only.',
  super: 'Only a super admin may do this.',
};

/** 403 `forbidden` unless the caller holds `permission`. */
export function requirePermission(res: Response, permission: AdminPermission): void {
  if (permission === 'read') return;
  const p = principalOf(res);
  if (!permissionsOf(p)[permission]) throw new AppError('forbidden', { message: REFUSALS[permission], detail: `${permission} permission required` });
}

export function requireOperator(res: Response): void {
  if (principalOf(res).kind !== 'operator') throw new AppError('forbidden', { detail: 'operator key required' });
}

/**
 * The tenant named in the path, as the caller may see it: a tenant key or a console member reaching
 * another tenant's path gets 404 `tenant_not_found`, exactly as if the tenant did not exist.
 */
export async function scopedTenant(s: Services, req: Request, res: Response): Promise<Tenant> {
  const domain = TenantRepository.normaliseDomain(req.params.domain);
  const p = principalOf(res);
  if (!domain || (p.kind !== 'operator' && p.domain !== domain)) {
    throw new AppError('tenant_not_found', { detail: 'tenant outside the key scope or malformed' });
  }
  const tenant = await s.tenants.load(domain);
  res.locals.domain = tenant.domain;
  return tenant;
}

/** Records an admin change in the tenant's audit trail. */
export function auditAdmin(s: Services, req: Request, res: Response, event: Omit<AuditEvent, 'actor' | 'requestId' | 'ip'>): Promise<void> {
  return s.audit.record({ ...event, actor: actorOf(res), requestId: res.locals.requestId, ip: req.ip });
}
