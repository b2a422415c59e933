import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { TenantRepository } from '../domain/tenants.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { rateLimit } from '../http/rate-limit.js';
import type { AuditEvent } from '../observability/audit.js';
import type { Services } from '../services.js';
import { project, projectionOf, wants, type Projection } from './projection.js';
import { MAX_PAGE, resourceTypes, schemas, serviceProviderConfig, URN } from './schema-documents.js';
import { scimBase, versionOf, type ListQuery } from './scim-users.js';
import type { ScimPrincipal } from './scim-tokens.js';

declare module 'express-serve-static-core' {
  interface Locals {
    scim?: { principal: ScimPrincipal; tenant: Tenant };
  }
}

export const SCIM_PATH = '/scim/v2';
const SCIM_TYPE = 'application/scim+json';

function send(res: Response, status: number, body: unknown): void {
  res.status(status).type(SCIM_TYPE).send(JSON.stringify(body));
}

function sendResource(res: Response, status: number, resource: Record<string, unknown>, p: Projection = {}): void {
  res.setHeader('ETag', versionOf(resource));
  send(res, status, project(resource, p));
}

function listResponse(total: number, startIndex: number, resources: unknown[]): Record<string, unknown> {
  return { schemas: [URN.listResponse], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** startIndex (1-based; below 1 is 1) and count (0 … MAX_PAGE; above is MAX_PAGE), RFC 7644 §3.4.2.4. */
function pagingOf(query: Record<string, unknown>): ListQuery {
  const int = (v: unknown, name: string, fallback: number): number => {
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || !/^-?\d{1,9}$/.test(v)) throw new AppError('scim_invalid_syntax', { detail: `${name} is not an integer`, message: `${name} must be an integer.` });
    return Number(v);
  };
  const filter = query.filter;
  if (filter !== undefined && typeof filter !== 'string') throw new AppError('scim_invalid_filter', { detail: 'filter given twice' });
  return {
    filter,
    startIndex: Math.max(1, int(query.startIndex, 'startIndex', 1)),
    count: Math.min(MAX_PAGE, Math.max(0, int(query.count, 'count', 100))),
  };
}

const ifMatchOf = (req: Request): string | undefined => req.get('if-match') ?? undefined;

/**
 * SCIM 2.0 service provider per tenant (docs/spec.md §14) at `/scim/v2/{domain}`: a per-domain bearer token,
 * rate-limited per token, every change audited with actor `scim-token:<id>`, RFC 7644 error bodies.
 */
export function scimRoutes(s: Services): Router {
  const router = Router();
  const base = `${SCIM_PATH}/:domain`;

  router.use(SCIM_PATH, (_req: Request, res: Response, next: NextFunction) => {
    res.locals.errorFormat = 'scim';
    next();
  });

  const authenticate = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const header = req.get('authorization') ?? '';
    const presented = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const principal = await s.scimTokens.resolve(presented);
    const domain = TenantRepository.normaliseDomain(req.params.domain);
    // Another domain's token is refused exactly like an unknown one: nothing says it is valid elsewhere.
    if (!principal || !domain || principal.domain !== domain) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="scim"');
      throw new AppError('scim_unauthorized', { detail: principal ? 'token of another domain' : 'no valid token' });
    }
    res.locals.domain = domain;
    const tenant = await s.tenants.load(domain);
    res.locals.scim = { principal, tenant };
    next();
  };

  router.use(base, authenticate);
  router.use(
    base,
    rateLimit(s, { bucket: 'scim', limit: s.config.scim.rateLimitPerMinute, windowMs: 60_000, subject: (req) => req.res!.locals.scim!.principal.tokenId }),
  );
  router.use(base, express.json({ limit: '2mb', type: ['application/json', SCIM_TYPE] }));

  const ctx = (res: Response): { principal: ScimPrincipal; tenant: Tenant } => res.locals.scim!;
  const audit = (req: Request, res: Response, event: Omit<AuditEvent, 'actor' | 'requestId' | 'ip' | 'domain'>): Promise<void> => {
    const { principal, tenant } = ctx(res);
    return s.audit.record({ ...event, domain: tenant.domain, actor: `scim-token:${principal.tokenId}`, requestId: res.locals.requestId, ip: req.ip });
  };
  const baseOf = (res: Response): string => scimBase(s.config.publicUrl, ctx(res).tenant.domain);

  // Discovery (RFC 7644 §4).
  router.get(`${base}/ServiceProviderConfig`, (_req, res) => send(res, 200, serviceProviderConfig(baseOf(res))));
  router.get(`${base}/ResourceTypes`, (_req, res) => {
    const all = resourceTypes(baseOf(res));
    send(res, 200, listResponse(all.length, 1, all));
  });
  router.get(`${base}/ResourceTypes/:id`, (req, res) => {
    const found = resourceTypes(baseOf(res)).find((r) => r.id === req.params.id);
    if (!found) throw new AppError('scim_resource_not_found', { detail: 'no such resource type' });
    send(res, 200, found);
  });
  router.get(`${base}/Schemas`, (_req, res) => {
    const all = schemas(baseOf(res));
    send(res, 200, listResponse(all.length, 1, all));
  });
  router.get(`${base}/Schemas/:id`, (req, res) => {
    const found = schemas(baseOf(res)).find((r) => r.id === req.params.id);
    if (!found) throw new AppError('scim_resource_not_found', { detail: 'no such schema' });
    send(res, 200, found);
  });

  // Users.
  router.get(`${base}/Users`, async (req, res) => {
    const query = pagingOf(req.query);
    const p = projectionOf(req.query);
    const page = await s.scimUsers.list(ctx(res).tenant, query);
    send(res, 200, listResponse(page.totalResults, query.startIndex, page.resources.map((r) => project(r, p))));
  });
  router.post(`${base}/Users`, async (req, res) => {
    const change = await s.scimUsers.create(ctx(res).tenant, req.body);
    await audit(req, res, { type: 'scim.user_created', data: { memberId: change.member.id, status: change.member.status, withExternalKey: Boolean(change.member.externalKey) } });
    res.setHeader('Location', String((change.resource.meta as { location: string }).location));
    sendResource(res, 201, change.resource, projectionOf(req.query));
  });
  router.get(`${base}/Users/:id`, async (req, res) => {
    sendResource(res, 200, await s.scimUsers.read(ctx(res).tenant, String(req.params.id)), projectionOf(req.query));
  });
  const userChanged = async (req: Request, res: Response, how: 'replaced' | 'patched', change: Awaited<ReturnType<Services['scimUsers']['patch']>>): Promise<void> => {
    await audit(req, res, { type: `scim.user_${how}`, data: { memberId: change.member.id, status: change.member.status } });
    if (change.deactivated) await audit(req, res, { type: 'scim.user_deactivated', data: { memberId: change.member.id, sessionsEnded: change.sessionsEnded } });
    sendResource(res, 200, change.resource, projectionOf(req.query));
  };
  router.put(`${base}/Users/:id`, async (req, res) => {
    await userChanged(req, res, 'replaced', await s.scimUsers.replace(ctx(res).tenant, String(req.params.id), req.body, ifMatchOf(req)));
  });
  router.patch(`${base}/Users/:id`, async (req, res) => {
    await userChanged(req, res, 'patched', await s.scimUsers.patch(ctx(res).tenant, String(req.params.id), req.body, ifMatchOf(req)));
  });
  router.delete(`${base}/Users/:id`, async (req, res) => {
    const { member, sessionsEnded } = await s.scimUsers.remove(ctx(res).tenant, String(req.params.id), ifMatchOf(req));
    await audit(req, res, { type: 'scim.user_deleted', data: { memberId: member.id, sessionsEnded } });
    res.status(204).end();
  });

  // Groups.
  router.get(`${base}/Groups`, async (req, res) => {
    const query = pagingOf(req.query);
    const p = projectionOf(req.query);
    const page = await s.scimGroups.list(ctx(res).tenant, query, wants(p, 'members'));
    send(res, 200, listResponse(page.totalResults, query.startIndex, page.resources.map((r) => project(r, p))));
  });
  router.post(`${base}/Groups`, async (req, res) => {
    const { tenant } = ctx(res);
    const change = await s.scimGroups.create(tenant, req.body);
    await audit(req, res, { type: 'scim.group_created', data: { groupId: change.group.id, added: change.added } });
    const resource = await s.scimGroups.resource(tenant, change.group, true);
    res.setHeader('Location', String((resource.meta as { location: string }).location));
    sendResource(res, 201, resource, projectionOf(req.query));
  });
  router.get(`${base}/Groups/:id`, async (req, res) => {
    const { tenant } = ctx(res);
    const p = projectionOf(req.query);
    const group = await s.scimGroups.load(tenant, String(req.params.id));
    sendResource(res, 200, await s.scimGroups.resource(tenant, group, wants(p, 'members')), p);
  });
  const groupChanged = async (req: Request, res: Response, change: Awaited<ReturnType<Services['scimGroups']['patch']>>, body: boolean): Promise<void> => {
    await audit(req, res, { type: 'scim.group_updated', data: { groupId: change.group.id, added: change.added, removed: change.removed } });
    res.setHeader('ETag', `W/"${change.group.version}"`);
    if (!body) {
      res.status(204).end();
      return;
    }
    const p = projectionOf(req.query);
    sendResource(res, 200, await s.scimGroups.resource(ctx(res).tenant, change.group, wants(p, 'members')), p);
  };
  router.put(`${base}/Groups/:id`, async (req, res) => {
    await groupChanged(req, res, await s.scimGroups.replace(ctx(res).tenant, String(req.params.id), req.body, ifMatchOf(req)), true);
  });
  // A group PATCH answers 204 (RFC 7644 §3.5.2) unless `attributes` asks for the group back: a group may hold 50,000 members.
  router.patch(`${base}/Groups/:id`, async (req, res) => {
    await groupChanged(req, res, await s.scimGroups.patch(ctx(res).tenant, String(req.params.id), req.body, ifMatchOf(req)), req.query.attributes !== undefined);
  });
  router.delete(`${base}/Groups/:id`, async (req, res) => {
    const group = await s.scimGroups.remove(ctx(res).tenant, String(req.params.id), ifMatchOf(req));
    await audit(req, res, { type: 'scim.group_deleted', data: { groupId: group.id } });
    res.status(204).end();
  });

  router.use(SCIM_PATH, (_req: Request, _res: Response, next: NextFunction) => next(new AppError('scim_resource_not_found', { detail: 'no such SCIM endpoint' })));
  return router;
}
