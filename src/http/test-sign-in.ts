import type { Request, Response } from 'express';
import { explainTestFailure, testSignInMember, type TestSignInOutcome } from '../admin/test-sign-ins.js';
import type { Member } from '../domain/member.js';
import type { AppError } from '../errors/index.js';
import type { Services } from '../services.js';
import { esc, page } from './views.js';

/** The outcome of a test sign-in the login refused (code, private reason, plain words, what the IdP asserted). */
export function failedTestOutcome(err: AppError, assertedId?: string): TestSignInOutcome {
  const asserted = err.testSignIn?.assertedId ?? assertedId;
  return { status: 'failed', ...explainTestFailure(err), ...(asserted !== undefined ? { assertedId: asserted } : {}) };
}

export function succeededTestOutcome(member: Member, assertedId: string): TestSignInOutcome {
  return { status: 'succeeded', member: testSignInMember(member), assertedId };
}

function testSignInPage(succeeded: boolean): string {
  return page(
    'Test sign-in finished',
    `<h1>Test sign-in finished</h1><p>Test sign-in finished. Return to the console to see the result.</p>
<p class="ref">${succeeded ? 'The identity provider signed you in; nobody was signed in here.' : 'The sign-in did not succeed; the console shows the reason.'} You can close this tab.</p>`,
    { head: `<meta name="idpb-test-sign-in" content="${esc(succeeded ? 'succeeded' : 'failed')}">` },
  );
}

/**
 * The end of an administrator's test sign-in (docs/spec.md §11), at the ACS, the OAuth callback or the
 * test link itself: records the outcome on the test (never a session, never a cookie, never a change
 * to the tenant), audits it, and answers a small page — 200 when the login worked, else the status of
 * the refusal.
 */
export async function finishTestSignIn(s: Services, req: Request, res: Response, domain: string, id: string, outcome: TestSignInOutcome, status = 200): Promise<void> {
  await s.testSignIns.finish(domain, id, outcome);
  await s.audit.record({
    type: 'sso.test_sign_in.finished',
    domain,
    actor: 'idp',
    requestId: res.locals.requestId,
    ip: req.ip,
    ...(outcome.status === 'failed' ? { reason: outcome.reason } : {}),
    data: {
      testSignInId: id,
      status: outcome.status,
      ...(outcome.status === 'failed' ? { code: outcome.code } : { memberId: outcome.member.id }),
    },
  });
  res.locals.domain = domain;
  res.status(outcome.status === 'succeeded' ? 200 : status).type('html').send(testSignInPage(outcome.status === 'succeeded'));
}
