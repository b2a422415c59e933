/**
 * The gateway under test: a real `src/main.ts` (or `dist/main.js`) child process with an IDPB_CONFIG
 * file and a seed file written into the run's temp dir, on the run's Redis key prefix, demo off,
 * NODE_ENV=development (so the DEV-ONLY secrets and keys of config/default.json are accepted).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mode } from './settings.js';
import { servingProcesses, startNode, waitReady, type Child } from './processes.js';

/** The IdP of the bench tenants: test/fixtures/keys (the test suite's IdP A). */
export const BENCH_IDP = {
  entityId: 'https://idp-a.test/saml',
  ssoUrl: 'https://idp-a.test/sso',
  certificateFile: 'test/fixtures/keys/idp-a.crt.pem',
  privateKeyFile: 'test/fixtures/keys/idp-a.key.pem',
};

export const ACS_DOMAIN = 'acs.bench.test';
export const MDM_DOMAIN = 'mdm.bench.test';
export const PLAIN_DOMAIN = 'plain.bench.test';
/** Members per tenant; logins and tokens cycle over them. */
export const MEMBERS_PER_TENANT = 500;

export const memberKey = (i: number): string => `bench-emp-${String(i).padStart(5, '0')}`;
export const memberId = (i: number): string => `bm-${String(i).padStart(5, '0')}`;

/**
 * The per-client limits of the public routes (config `rateLimits`), raised far above what the bench
 * sends: every request comes from 127.0.0.1, thousands a second. The limiter still runs (one store
 * round trip per request, as deployed); it only never refuses.
 */
export const BENCH_RATE_LIMITS = {
  loginStartPerMinute: 10_000_000,
  acsPerMinute: 10_000_000,
  oauthCallbackPerMinute: 10_000_000,
  samlLogoutPerMinute: 10_000_000,
  logoutPerMinute: 10_000_000,
  opAuthorizePerMinute: 10_000_000,
} as const;

/** Environment variables the config loader reads (src/config/load.ts ENV_MAP): never inherited by the child. */
const CONFIG_ENV = [
  'PORT', 'PUBLIC_URL', 'TRUST_PROXY', 'LOG_LEVEL', 'REDIS_URL', 'REDIS_KEY_PREFIX', 'SECRET_KEYS', 'ADMIN_API_KEY', 'SERVICE_ORIGINS',
  'DEFAULT_SERVICE_URL', 'SP_ENTITY_ID', 'OIDC_SIGNING_KEY_FILE', 'SP_SIGNING_KEY_FILE', 'SP_SIGNING_CERT_FILE', 'SP_SIGNING_NEXT_CERT_FILE',
  'DEMO', 'SEED_FILE', 'IDPB_CONFIG', 'WORKERS', 'NODE_ENV',
];

export function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of CONFIG_ENV) delete env[k];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export interface GatewayFiles {
  configFile: string;
  seedFile: string;
}

export interface GatewayConfigInput {
  dir: string;
  port: number;
  redisUrl: string;
  keyPrefix: string;
  logLevel: string;
  /** `saml.secondGate` (deployment-wide): false for the ACS row "strict gate alone". Default true. */
  secondGate?: boolean;
  /** Distinguishes the files of a second configuration in the same dir (e.g. `strict`). */
  name?: string;
}

const samlTenant = (domain: string, plan: 'standard' | 'advanced') => ({
  domain,
  name: `Bench ${domain}`,
  plan,
  sso: {
    enabled: true,
    type: 'saml',
    userKey: 'externalKey',
    webLoginUrl: BENCH_IDP.ssoUrl,
    saml: { idpEntityId: BENCH_IDP.entityId, idpCertificates: [`@file:${BENCH_IDP.certificateFile}`] },
  },
  members: Array.from({ length: MEMBERS_PER_TENANT }, (_, i) => ({ id: memberId(i), account: `user${i}@${domain}`, name: `Bench member ${i}`, externalKey: memberKey(i), status: 'in_use' })),
});

/** Writes the IDPB_CONFIG file and the seed (three SAML tenants) into `dir`. */
export function writeGatewayFiles(input: GatewayConfigInput): GatewayFiles {
  const suffix = input.name ? `-${input.name}` : '';
  const configFile = join(input.dir, `gateway-config${suffix}.json`);
  const seedFile = join(input.dir, `gateway-seed${suffix}.json`);
  const publicUrl = `http://127.0.0.1:${input.port}`;
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        port: input.port,
        publicUrl,
        logLevel: input.logLevel,
        store: { redisUrl: input.redisUrl, keyPrefix: input.keyPrefix, commandTimeoutMs: 5000 },
        demo: { enabled: false },
        rateLimits: BENCH_RATE_LIMITS,
        // The ACS row "strict gate alone" runs a gateway without passport-saml's second gate (saml.secondGate).
        ...(input.secondGate === false ? { saml: { secondGate: false } } : {}),
        seedFile,
      },
      null,
      2,
    ),
  );
  writeFileSync(seedFile, JSON.stringify({ tenants: [samlTenant(ACS_DOMAIN, 'standard'), samlTenant(MDM_DOMAIN, 'standard'), samlTenant(PLAIN_DOMAIN, 'standard')] }, null, 2));
  return { configFile, seedFile };
}

/** The operator key of config/default.json (DEV-ONLY, accepted outside production). */
export function operatorAuth(repo: string): string {
  const defaults = JSON.parse(readFileSync(join(repo, 'config/default.json'), 'utf8')) as { adminApiKey: string };
  return `Bearer ${defaults.adminApiKey}`;
}

export interface RunningGateway {
  child: Child;
  base: string;
  mode: Mode;
  /** Processes serving requests (cluster workers, or 1). */
  processes: number;
  processesKnown: boolean;
}

export async function startGateway(opts: { repo: string; dir: string; files: GatewayFiles; port: number; mode: Mode; useDist: boolean; name?: string }): Promise<RunningGateway> {
  // BENCH_GATEWAY_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the gateway under load.
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const entry = [...nodeArgs, ...(opts.useDist ? ['dist/main.js'] : ['--import', 'tsx', 'src/main.ts'])];
  const child = startNode({
    name: `gateway (${opts.mode}${opts.name ? `, ${opts.name}` : ''})`,
    args: entry,
    cwd: opts.repo,
    // WORKERS=1 for the per-core run; unset for the default deployment (all cores once main.ts clusters).
    env: cleanEnv({ NODE_ENV: 'development', IDPB_CONFIG: opts.files.configFile, WORKERS: opts.mode === 'per-core' ? '1' : undefined }),
    logFile: join(opts.dir, `gateway-${opts.mode}${opts.name ? `-${opts.name}` : ''}.log`),
  });
  const base = `http://127.0.0.1:${opts.port}`;
  try {
    await waitReady(child, `${base}/readyz`, 90_000);
    // The seed is applied before the server listens, but make sure a tenant answers.
    await waitReady(child, `${base}/saml/metadata/${ACS_DOMAIN}`, 30_000);
    const counted = await servingProcesses(child.pid);
    return { child, base, mode: opts.mode, processes: counted ?? 1, processesKnown: counted !== null };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

