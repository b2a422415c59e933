import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { TenantRepository } from '../../domain/tenants.js';
import { MdmCheck } from '../../mdm/mdm-check.js';
import type { Services } from '../../services.js';
import { rateLimit } from '../rate-limit.js';
import { parseBody } from '../validate.js';

const checkSchema = z.union([
  z.strictObject({ domain: z.string().min(1).max(253) }),
  z.strictObject({ account: z.string().min(3).max(254) }),
]);

/** The tenant an account belongs to: the part after its last `@`. */
function domainOf(body: z.infer<typeof checkSchema>): string | null {
  const raw = 'domain' in body ? body.domain : body.account.slice(body.account.lastIndexOf('@') + 1);
  return TenantRepository.normaliseDomain(raw);
}

/**
 * The mobile app's routes. `POST /mobile/mdm/check` (M-5): the app asks, before it opens the browser,
 * whether its MDM headers would pass — JSON `{"domain"}` or `{"account"}`, headers `X-MDM-Auth-Code`
 * and `X-Device-Id` → 200 `{"ok":true}` (also for tenants without 3rd-party MDM sync), or 403 with the
 * reason as `error`, or 429 `rate_limited` (failures per device and per IP, M-10, and all requests per IP).
 */
export function mobileRoutes(s: Services): Router {
  const router = Router();

  router.post(
    '/mobile/mdm/check',
    rateLimit(s, { bucket: 'mobile-mdm-check', limit: 120, windowMs: 60_000 }),
    express.json({ limit: '4kb' }),
    async (req: Request, res: Response) => {
      const body = parseBody(checkSchema, req.body);
      const domain = domainOf(body);
      const tenant = await s.tenants.load(domain);
      res.locals.domain = tenant.domain;
      const result = await s.mdmCheck.check({
        domain: tenant.domain,
        memberGroup: tenant.group ?? null,
        presentedCode: req.get('x-mdm-auth-code') ?? null,
        deviceId: req.get('x-device-id') ?? null,
        clientIp: req.ip,
        requestId: res.locals.requestId,
      });
      if (!result.ok) {
        if (result.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(result.retryAfterSeconds));
        throw MdmCheck.toError(result);
      }
      res.json({ ok: true });
    },
  );

  return router;
}
