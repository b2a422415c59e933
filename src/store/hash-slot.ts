/**
 * Redis Cluster runs a multi-key command (MGET, SUNION, a MULTI/EXEC) only when every key hashes to
 * one slot. Redis hashes the content of a key's first non-empty `{…}` (its hash tag), or the whole key
 * when it has none; `keys.ts` gives every key of a tenant the tag `{<domain>}`.
 *
 * Both stores check the rule on every multi-key call, so a call that would fail on Cluster fails in
 * every test run, on standalone Redis and in memory too. The rule checked is the stricter "the same
 * hashed part" (not merely "the same slot number"): it holds under any key prefix without braces
 * (the configured prefix may not contain any), whereas two different tags sharing a slot by chance
 * would stop sharing it under another prefix.
 */

/** A multi-key call with keys of different hash tags: a bug of the caller, never "store unavailable". */
export class CrossSlotError extends Error {
  constructor(operation: string, first: string, other: string) {
    super(`${operation}: keys "${first}" and "${other}" hash to different Redis Cluster slots; the keys of one call must share a hash tag (see src/store/keys.ts)`);
    this.name = 'CrossSlotError';
  }
}

/** What Redis Cluster hashes of `key`: the content of its first non-empty `{…}`, else the whole key. */
export function hashedPartOf(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** Throws CrossSlotError unless every key hashes like the first one. */
export function assertSameSlot(operation: string, keys: readonly string[]): void {
  if (keys.length < 2) return;
  const first = keys[0]!;
  const part = hashedPartOf(first);
  for (const key of keys) if (hashedPartOf(key) !== part) throw new CrossSlotError(operation, first, key);
}
