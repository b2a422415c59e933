import { digestForKey, keys, type KeyValueStore } from '../store/index.js';
import { DEVICE_SESSIONS_TTL_MS } from '../store/keys.js';

/** One mobile session (OP grant) on a device, whatever its tenant. */
export interface DeviceSession {
  grantId: string;
  /** The member's tenant and its group. */
  domain: string;
  group: string | null;
  /** The restricting tenant (M-7) whose key or session admitted this one as a member of its group; null otherwise. */
  restrictedBy: string | null;
  /** The MDM key that admitted it (null: no MDM sync). Lets a refresh skip re-recording the admission. */
  keyId?: string | null;
}

export interface DeviceSessionsDeps {
  store: KeyValueStore;
  /** Whether the OP grant still exists (not revoked, not expired). */
  isLive: (grantId: string) => Promise<boolean>;
}

/** Members of one tenant group: the same tenant, or tenants sharing a (non-null) group. */
export function sameGroup(a: { domain: string; group: string | null }, b: { domain: string; group: string | null }): boolean {
  return a.domain === b.domain || (a.group !== null && a.group === b.group);
}

/**
 * The mobile sessions of each device across all tenants (M-7 (b)–(d)): which accounts are logged in on
 * a device decides whether an other-group session stays, ends at once, or ends at its next refresh.
 * Indexed by the SHA-256 of X-Device-Id; entries whose grant ended are dropped when read.
 */
export class DeviceSessions {
  constructor(private readonly deps: DeviceSessionsDeps) {}

  private key(deviceId: string): string {
    return keys.deviceSessions(digestForKey(deviceId));
  }

  async record(deviceId: string, session: DeviceSession): Promise<void> {
    const { grantId, ...entry } = session;
    const key = this.key(deviceId);
    await Promise.all([this.deps.store.hSet(key, { [grantId]: JSON.stringify(entry) }), this.deps.store.expire(key, DEVICE_SESSIONS_TTL_MS)]);
  }

  /** The live sessions on the device; ended ones are pruned. `liveGrantId` (the grant presenting itself) is not looked up. */
  async list(deviceId: string, liveGrantId?: string): Promise<DeviceSession[]> {
    const key = this.key(deviceId);
    const live: DeviceSession[] = [];
    const dead: string[] = [];
    for (const [grantId, raw] of Object.entries(await this.deps.store.hGetAll(key))) {
      const entry = parse(raw);
      if (entry && (grantId === liveGrantId || (await this.deps.isLive(grantId)))) live.push({ grantId, ...entry });
      else dead.push(grantId);
    }
    if (dead.length > 0) await this.deps.store.hDel(key, ...dead);
    return live;
  }

  async forget(deviceId: string, grantId: string): Promise<void> {
    await this.deps.store.hDel(this.key(deviceId), grantId);
  }
}

function parse(raw: string): Omit<DeviceSession, 'grantId'> | null {
  try {
    const v = JSON.parse(raw) as Partial<Omit<DeviceSession, 'grantId'>>;
    if (typeof v.domain !== 'string') return null;
    return { domain: v.domain, group: typeof v.group === 'string' ? v.group : null, restrictedBy: typeof v.restrictedBy === 'string' ? v.restrictedBy : null, keyId: typeof v.keyId === 'string' ? v.keyId : null };
  } catch {
    return null;
  }
}
