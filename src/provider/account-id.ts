/**
 * The OP's `sub`: the member id qualified by its tenant (`<domain>:<member id>`), so it is unique across
 * tenants and every token, grant and session names the tenant it belongs to (O-3, O-4).
 */
export function toAccountId(domain: string, memberId: string): string {
  return `${domain}:${memberId}`;
}

export function fromAccountId(accountId: unknown): { domain: string; memberId: string } | null {
  if (typeof accountId !== 'string') return null;
  const i = accountId.indexOf(':');
  if (i <= 0 || i === accountId.length - 1) return null;
  return { domain: accountId.slice(0, i), memberId: accountId.slice(i + 1) };
}
