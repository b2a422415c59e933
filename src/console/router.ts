import { useEffect, useState } from 'react';

export const BASE = '/console';
export type Route = 'overview' | 'sso' | 'members' | 'external-keys' | 'api-keys' | 'scim-tokens' | 'mdm' | 'audit' | 'activity' | 'operator' | 'health';
export const ROUTES: readonly Route[] = ['overview', 'sso', 'members', 'external-keys', 'api-keys', 'scim-tokens', 'mdm', 'audit', 'activity', 'operator', 'health'];

export function hrefOf(route: Route): string {
  return route === 'overview' ? `${BASE}/` : `${BASE}/${route}`;
}

function routeOf(pathname: string): Route {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length).replace(/^\/+|\/+$/g, '') : '';
  return (ROUTES as readonly string[]).includes(rest) ? (rest as Route) : 'overview';
}

/** History routing under /console/ (the server answers index.html for every non-file path). */
export function useRoute(): [Route, (route: Route) => void] {
  const [route, setRoute] = useState<Route>(() => routeOf(location.pathname));
  useEffect(() => {
    const onPop = () => setRoute(routeOf(location.pathname));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const navigate = (next: Route) => {
    if (next !== route || location.search) history.pushState(null, '', hrefOf(next));
    setRoute(next);
  };
  return [route, navigate];
}
