import { useCallback, useState } from 'react';
import type { Session } from './api';
import type { Route } from './router';

const KEY = 'idpb.console.operatorDomain';
const OPERATOR_ROUTES: readonly Route[] = ['operator', 'health'];

function read(): string {
  try {
    return sessionStorage.getItem(KEY) ?? '';
  } catch {
    return '';
  }
}

/**
 * The tenant the operator has opened from the domain table ('' = none): the console then uses it in its
 * /admin/v1 paths, as a member's console uses their own. Kept for this tab only (sessionStorage).
 */
export function useOperatorDomain(): [string, (domain: string) => void] {
  const [domain, setDomain] = useState(read);
  const pick = useCallback((next: string) => {
    try {
      if (next) sessionStorage.setItem(KEY, next);
      else sessionStorage.removeItem(KEY);
    } catch {
      // not remembered across reloads
    }
    setDomain(next);
  }, []);
  return [domain, pick];
}

/** The nav: the operator's screens for the operator only; a tenant's screens once there is a tenant. */
export function visibleRoutes(routes: readonly Route[], session: Pick<Session, 'kind'>, domain: string): Route[] {
  const operator = session.kind === 'operator';
  return routes.filter((r) => (OPERATOR_ROUTES.includes(r) ? operator : domain !== ''));
}

/** The screen to show: a tenant screen without a tenant (the operator before choosing one) shows the domain table. */
export function screenFor(route: Route, session: Pick<Session, 'kind'>, domain: string): Route {
  if (session.kind !== 'operator') return OPERATOR_ROUTES.includes(route) ? 'overview' : route;
  return OPERATOR_ROUTES.includes(route) || domain ? route : 'operator';
}
