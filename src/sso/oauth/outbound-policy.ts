import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { buildConnector } from 'undici';

/**
 * The one outbound policy of the gateway: where server-side calls may go. Every call the gateway makes
 * on a tenant's behalf — IdP metadata by URL (S-12), the `works` token and user-info APIs (S-15), OIDC
 * discovery, token and JWKS (S-16) — goes through it twice:
 *
 * 1. before the call (`checkUrl`): the host is resolved and every address it resolves to must be
 *    admitted, else the call is refused without a connection;
 * 2. at connect time (`connector`): the host is resolved again and the socket is opened to an admitted
 *    address literally, so a DNS answer that changes between the check and the connection (DNS
 *    rebinding) cannot reach an address the check would have refused.
 *
 * Admitted: public unicast addresses. Refused unless the operator allows them (`outbound` in the
 * config): loopback, private (RFC 1918, ULA), link-local, CGNAT, unspecified, multicast, broadcast,
 * reserved and documentation ranges — also inside IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6
 * addresses — and host names that do not resolve. Cloud metadata endpoints are refused even then,
 * unless `allowedHosts` names that exact address.
 */

/** `outbound` in the config. */
export interface OutboundPolicySettings {
  /** Admit every non-public address except cloud metadata endpoints (closed networks, tests). */
  allowPrivateNetworks: boolean;
  /** `host`, `host:port`, an IP (`10.0.0.5`, `[fd00::5]:8443`) or a CIDR (`10.20.0.0/16`). */
  allowedHosts: readonly string[];
}

/** DNS for outbound calls: every address of a host name (tests inject one to play DNS rebinding). */
export type HostResolver = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

export const systemResolver: HostResolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/** Why a destination was refused; for the operator's log only, never for a tenant. */
export type RefusalReason = 'not_public' | 'cloud_metadata' | 'dns_failed';

/** The policy refused a destination; no connection was opened. */
export class OutboundRefusal extends Error {
  readonly code = 'IDPB_OUTBOUND_REFUSED';

  constructor(
    readonly refusal: RefusalReason,
    detail: string,
  ) {
    super(detail);
    this.name = 'OutboundRefusal';
  }
}

/** The first OutboundRefusal along an error's cause chain (undici and fetch wrap connector errors). */
export function findRefusal(err: unknown): OutboundRefusal | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    if (e instanceof OutboundRefusal) return e;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Addresses

interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

function parseV4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

function parseV6(text: string): Uint8Array {
  let s = text.toLowerCase();
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const [a, b, c, d] = parseV4(last);
    s = `${s.slice(0, lastColon + 1)}${((a! << 8) | b!).toString(16)}:${((c! << 8) | d!).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const groups = (part: string | undefined): number[] => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** An IP literal (an IPv6 zone is ignored), or null. */
function parseIp(text: string): IpAddress | null {
  const bare = text.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return { family: 4, bytes: parseV4(bare) };
  if (family === 6) return { family: 6, bytes: parseV6(bare) };
  return null;
}

interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

function cidr(text: string): Cidr {
  const [ip, prefix] = text.split('/') as [string, string];
  const parsed = parseIp(ip)!;
  return { ...parsed, prefix: Number(prefix) };
}

function inCidr(ip: IpAddress, range: Cidr): boolean {
  if (ip.family !== range.family) return false;
  for (let bit = 0; bit < range.prefix; bit += 8) {
    const bits = Math.min(8, range.prefix - bit);
    const mask = (0xff << (8 - bits)) & 0xff;
    if ((ip.bytes[bit / 8]! & mask) !== (range.bytes[bit / 8]! & mask)) return false;
  }
  return true;
}

/** IPv4 ranges that are not public unicast (RFC 6890 and friends). */
const V4_NOT_PUBLIC = [
  '0.0.0.0/8', // "this network", 0.0.0.0 (unspecified: reaches the local host)
  '10.0.0.0/8', // RFC 1918
  '100.64.0.0/10', // CGNAT (RFC 6598)
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local
  '172.16.0.0/12', // RFC 1918
  '192.0.0.0/24', // IETF protocol assignments
  '192.0.2.0/24', // TEST-NET-1
  '192.88.99.0/24', // 6to4 relay anycast
  '192.168.0.0/16', // RFC 1918
  '198.18.0.0/15', // benchmarking
  '198.51.100.0/24', // TEST-NET-2
  '203.0.113.0/24', // TEST-NET-3
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, and 255.255.255.255 broadcast
].map(cidr);

/** IPv6 is public only inside global unicast 2000::/3, and not in these parts of it. */
const V6_GLOBAL_UNICAST = cidr('2000::/3');
const V6_NOT_PUBLIC = [
  '2001::/32', // Teredo (carries an obfuscated IPv4 address)
  '2001:2::/48', // benchmarking
  '2001:10::/28', // ORCHID
  '2001:20::/28', // ORCHIDv2
  '2001:db8::/32', // documentation
  '3fff::/20', // documentation
].map(cidr);

/** IPv6 forms that carry an IPv4 address: the IPv4 address decides. */
const V6_EMBEDDING_V4: Array<{ range: Cidr; offset: number }> = [
  { range: cidr('::ffff:0:0/96'), offset: 12 }, // IPv4-mapped
  { range: cidr('::ffff:0:0:0/96'), offset: 12 }, // IPv4-translated (SIIT)
  { range: cidr('::/96'), offset: 12 }, // IPv4-compatible (deprecated)
  { range: cidr('64:ff9b::/96'), offset: 12 }, // NAT64 well-known prefix
  { range: cidr('2002::/16'), offset: 2 }, // 6to4
];
const V6_LOCAL_NAT64 = cidr('64:ff9b:1::/48');
const V6_LOWEST = cidr('::/120');

/** Cloud metadata endpoints (AWS EC2 and ECS/EKS, GCP, Azure, OpenStack, DigitalOcean, Oracle, Alibaba). */
const METADATA_ADDRESSES = ['169.254.169.254', '169.254.170.2', '169.254.170.23', '100.100.100.200', '192.0.0.192', 'fd00:ec2::254', 'fd00:ec2::23'].map(
  (a) => parseIp(a)!,
);
const METADATA_HOSTNAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);

const sameIp = (a: IpAddress, b: IpAddress): boolean => a.family === b.family && a.bytes.every((x, i) => x === b.bytes[i]);

export type AddressClass = 'public' | 'not_public' | 'cloud_metadata';

function classify(ip: IpAddress): AddressClass {
  if (METADATA_ADDRESSES.some((m) => sameIp(m, ip))) return 'cloud_metadata';
  if (ip.family === 4) return V4_NOT_PUBLIC.some((r) => inCidr(ip, r)) ? 'not_public' : 'public';
  // :: and ::1 (unspecified, loopback) sit inside the IPv4-compatible range: they are not IPv4 addresses.
  if (inCidr(ip, V6_LOWEST)) return 'not_public';
  const embedding = V6_EMBEDDING_V4.find((e) => inCidr(ip, e.range));
  if (embedding) return classify({ family: 4, bytes: ip.bytes.slice(embedding.offset, embedding.offset + 4) });
  if (!inCidr(ip, V6_GLOBAL_UNICAST) || inCidr(ip, V6_LOCAL_NAT64) || V6_NOT_PUBLIC.some((r) => inCidr(ip, r))) return 'not_public';
  return 'public';
}

/** The class of an IP literal; null when `address` is not one. */
export function classifyAddress(address: string): AddressClass | null {
  const ip = parseIp(address);
  return ip ? classify(ip) : null;
}

// ---------------------------------------------------------------------------------------------------
// The operator's allowlist

type AllowedHost =
  | { kind: 'name'; name: string; port?: number }
  | { kind: 'address'; ip: IpAddress; port?: number }
  | { kind: 'cidr'; range: Cidr };

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const normaliseName = (name: string): string => name.toLowerCase().replace(/\.$/, '');

/**
 * One `outbound.allowedHosts` entry: `host`, `host:port`, `10.0.0.5`, `10.0.0.5:8443`, `fd00::5`,
 * `[fd00::5]:8443` or a CIDR (`10.20.0.0/16`, `fd00:1::/48`). Returns the entry, or why it is not one.
 */
export function parseAllowedHost(entry: string): AllowedHost | string {
  const text = entry.trim();
  const portOf = (p: string | undefined): number | undefined | string => {
    if (p === undefined) return undefined;
    const n = Number(p);
    return /^\d{1,5}$/.test(p) && n >= 1 && n <= 65535 ? n : `"${p}" is not a port (1–65535)`;
  };
  if (text.includes('/')) {
    const [ip, prefix = ''] = text.split('/') as [string, string | undefined];
    const parsed = parseIp(ip);
    const max = parsed?.family === 4 ? 32 : 128;
    if (!parsed || ip.startsWith('[') || !/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `"${entry}" is not a CIDR (e.g. 10.20.0.0/16 or fd00:1::/48)`;
    const range = { ...parsed, prefix: Number(prefix) };
    // A /32 or /128 is one address.
    return range.prefix === max ? { kind: 'address', ip: parsed } : { kind: 'cidr', range };
  }
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    const ip = parseIp(bracketed[1]!);
    const port = portOf(bracketed[2]);
    if (!ip || ip.family !== 6) return `"${entry}" is not an IPv6 address`;
    if (typeof port === 'string') return port;
    return { kind: 'address', ip, port };
  }
  const bareIp = parseIp(text);
  if (bareIp) return { kind: 'address', ip: bareIp };
  const [host = '', port, ...rest] = text.split(':');
  const parsedPort = portOf(port);
  if (rest.length > 0) return `"${entry}" is not host[:port] (write IPv6 addresses as [fd00::5]:8443)`;
  if (typeof parsedPort === 'string') return parsedPort;
  const ip = parseIp(host);
  if (ip) return { kind: 'address', ip, port: parsedPort };
  const name = normaliseName(host);
  if (!HOST_NAME.test(name)) return `"${entry}" is not a host name, IP address or CIDR`;
  return { kind: 'name', name, port: parsedPort };
}

// ---------------------------------------------------------------------------------------------------
// The policy

/** An address a call may connect to; `public` is false when only the operator's settings admit it. */
export interface AdmittedAddress {
  address: string;
  public: boolean;
}

/** Connection errors after which the next address of the host is tried (nothing was exchanged yet). */
const TRY_NEXT_ADDRESS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAFNOSUPPORT']);

export class OutboundPolicy {
  private readonly allowed: AllowedHost[];

  constructor(
    private readonly settings: OutboundPolicySettings,
    private readonly resolve: HostResolver = systemResolver,
  ) {
    this.allowed = settings.allowedHosts.map((entry) => {
      const parsed = parseAllowedHost(entry);
      // The config schema checked every entry; a bad one here is a bug.
      if (typeof parsed === 'string') throw new Error(`outbound.allowedHosts: ${parsed}`);
      return parsed;
    });
  }

  /** Whether an allowlist entry admits `ip` reached as `host:port`; `exact`: only entries naming this very address. */
  private listed(host: string, port: number, ip: IpAddress, exact: boolean): boolean {
    const portOk = (p: number | undefined): boolean => p === undefined || p === port;
    return this.allowed.some((e) => {
      if (e.kind === 'address') return sameIp(e.ip, ip) && portOk(e.port);
      if (exact) return false;
      return e.kind === 'name' ? e.name === host && portOk(e.port) : inCidr(ip, e.range);
    });
  }

  /** Whether `address`, reached as `host:port`, may be dialled; throws OutboundRefusal if not. */
  private admit(host: string, port: number, address: string): AdmittedAddress {
    const ip = parseIp(address);
    if (!ip) throw new OutboundRefusal('dns_failed', `${host}: "${address}" is not an address`);
    const kind = classify(ip);
    if (kind === 'public') return { address, public: true };
    if (kind === 'cloud_metadata') {
      // Only an entry naming this exact address admits a metadata endpoint: no CIDR, no host name, no switch.
      if (this.listed(host, port, ip, true)) return { address, public: false };
      throw new OutboundRefusal('cloud_metadata', `${host}:${port} resolves to ${address}, a cloud metadata address`);
    }
    if (this.settings.allowPrivateNetworks || this.listed(host, port, ip, false)) return { address, public: false };
    throw new OutboundRefusal('not_public', `${host}:${port} resolves to ${address}, which is not a public address`);
  }

  /**
   * Every address `hostname:port` may be dialled at, in the resolver's order. Refuses (OutboundRefusal)
   * when the name does not resolve or any of its addresses is not admitted: a host that answers with a
   * public and a private address is refused, whichever of them a connection would use.
   */
  async admittedAddresses(hostname: string, port: number): Promise<AdmittedAddress[]> {
    const host = normaliseName(hostname.replace(/^\[|\]$/g, ''));
    if (parseIp(host)) return [this.admit(host, port, host)];
    if (METADATA_HOSTNAMES.has(host) && !this.allowed.some((e) => e.kind === 'name' && e.name === host)) {
      throw new OutboundRefusal('cloud_metadata', `${host} is a cloud metadata host name`);
    }
    let answers: ReadonlyArray<{ address: string }>;
    try {
      answers = await this.resolve(host);
    } catch (err) {
      throw new OutboundRefusal('dns_failed', `${host} does not resolve (${(err as { code?: string }).code ?? 'error'})`);
    }
    if (answers.length === 0) throw new OutboundRefusal('dns_failed', `${host} does not resolve (no addresses)`);
    return answers.map((a) => this.admit(host, port, a.address));
  }

  /**
   * The check before a call: the URL's host must resolve to admitted addresses only. `signal` ends the
   * wait (a slow resolver must not outlast the call's deadline).
   */
  async checkUrl(url: URL, signal?: AbortSignal): Promise<AdmittedAddress[]> {
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const check = this.admittedAddresses(url.hostname, port);
    if (!signal) return check;
    signal.throwIfAborted();
    return new Promise<AdmittedAddress[]>((resolve, reject) => {
      const abort = (): void => reject(signal.reason as Error);
      signal.addEventListener('abort', abort, { once: true });
      check.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
    });
  }

  /**
   * An undici connector enforcing the policy at connect time: it resolves the host itself, checks every
   * address, and opens the socket to the admitted address literally (TLS still verifies the host name).
   * `onDial` is told each address dialled.
   */
  connector(options: { timeoutMs: number; onDial?: (address: AdmittedAddress) => void }): buildConnector.connector {
    const base = buildConnector({ timeout: options.timeoutMs });
    return (target, callback) => {
      const port = Number(target.port) || (target.protocol === 'https:' ? 443 : 80);
      this.admittedAddresses(target.hostname, port).then(
        (addresses) => {
          const dial = (i: number): void => {
            const address = addresses[i]!;
            options.onDial?.(address);
            base({ ...target, hostname: address.address }, (...args) => {
              const [err] = args;
              if (err && i + 1 < addresses.length && TRY_NEXT_ADDRESS.has((err as { code?: string }).code ?? '')) dial(i + 1);
              else callback(...args);
            });
          };
          dial(0);
        },
        (err: Error) => callback(err, null),
      );
    };
  }
}
