import { isIP } from 'node:net'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import type { ExternalAuthConfig } from './auth/external.js'

/**
 * Everything taskbase reads from its environment, validated once. `loadConfig` is the only reader
 * of `process.env`; the rest of the code receives this object.
 */
export interface Config {
  readonly port: number
  readonly host: string
  readonly logLevel: string
  /** A server PostgreSQL; undefined means the embedded database in `dataDir`. */
  readonly databaseUrl: string | undefined
  /** A direct (unpooled) URL for LISTEN, when DATABASE_URL goes through a transaction pooler. */
  readonly databaseDirectUrl: string | undefined
  readonly databasePoolSize: number
  /** Connections that carry single reads in pipeline mode, besides the pool (db/postgres.ts). */
  readonly databaseReadConnections: number
  readonly dataDir: string
  /**
   * Undefined: a random secret is generated once and kept, in `dataDir` for the embedded database,
   * in the database itself (table server_settings) for a server one, shared by every process.
   */
  readonly jwtSecret: string | undefined
  readonly jwtIssuer: string
  readonly jwtAudience: string
  readonly accessTokenTtlSeconds: number
  readonly refreshTokenTtlDays: number
  /** How long tombstones and superseded changes stay in the change log, so sync cursors stay valid. */
  readonly syncRetentionDays: number
  readonly bodyLimitBytes: number
  readonly requestTimeoutMs: number
  /** Tokens of an external identity provider, accepted beside our own. */
  readonly externalAuth: ExternalAuthConfig
  /**
   * Fastify's `trustProxy`: false takes the client address from the socket; otherwise from
   * X-Forwarded-For, trusting every hop (true) or the listed proxies. (Fastify 5.12 ignores a
   * hop count, so none is offered.)
   */
  readonly trustProxy: boolean | string[]
  readonly rateLimits: RateLimitConfig
  /** When set, /metrics requires `Authorization: Bearer <token>`; unset, it answers loopback only. */
  readonly metricsToken: string | undefined
  /**
   * Origins whose browser front ends may call the API (CORS): exact origins, patterns such as
   * `https://*.example.com` (any subdomain of example.com), or `*` for any; empty means none (no
   * CORS headers at all).
   */
  readonly corsOrigins: readonly string[]
  /** Tasks one user may hold; a create past it is a 409 problem. */
  readonly tasksPerUserMax: number
  /** Projects one user may hold; a create past it is a 409 problem. */
  readonly projectsPerUserMax: number
  /** Event streams one user may hold open at once, per process; the next is a 429. */
  readonly eventStreamsPerUser: number
  /** A comment line on an idle event stream this often, so that proxies do not close it. */
  readonly eventHeartbeatMs: number
  /** Server processes (node:cluster) on a server database; the embedded database is always one. */
  readonly workers: number
  /** Named prepared statements on a server database: `auto` uses them unless behind a transaction pooler. */
  readonly databasePreparedStatements: boolean | 'auto'
  /** How late (past the lease) a reminder's firing is still delivered, after downtime; later, it is recorded as missed. */
  readonly reminderGraceMinutes: number
  /** How long a process holds the background jobs it claimed; a job whose holder died runs again after it. */
  readonly jobsLeaseSeconds: number
  /** Webhooks: the delays (ms) of the retries after the first attempt (WEBHOOKS_RETRY_SCHEDULE). */
  readonly webhooksRetrySchedule: readonly number[]
  /** Webhooks may go to private and loopback addresses, and over http (WEBHOOKS_ALLOW_PRIVATE; tests, closed networks). */
  readonly webhooksAllowPrivate: boolean
}

const DELAY_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 }
/** The longest retry delay accepted: a day. */
const MAX_RETRY_DELAY_MS = 24 * 3_600_000

/** `5s,5m,30m` as milliseconds, or undefined when it is not such a list (1 to 20 delays, each 1 s to 24 h). */
export function parseRetrySchedule (raw: string): number[] | undefined {
  const parts = raw.split(',').map((part) => part.trim())
  if (parts.length === 0 || parts.length > 20) return undefined
  const delays: number[] = []
  for (const part of parts) {
    const match = /^([1-9][0-9]{0,5})([smh])$/.exec(part)
    if (!match) return undefined
    const ms = Number(match[1]) * DELAY_UNITS[match[2]!]!
    if (ms > MAX_RETRY_DELAY_MS) return undefined
    delays.push(ms)
  }
  return delays
}

/** Each limit counts in a fixed window kept in PostgreSQL; 0 switches it off. */
export interface RateLimitConfig {
  /** Failed logins per account and, separately, per client address, in `loginWindowSeconds`. */
  readonly loginFailures: number
  readonly loginWindowSeconds: number
  /** Requests to register, login, refresh and logout per client address, per minute. */
  readonly authPerMinute: number
  /** Requests per signed-in user to /api/v1, the classic /api and /mcp, per minute. */
  readonly apiPerMinute: number
}

/** proxy-addr's names for address ranges, accepted in TRUST_PROXY beside addresses and CIDRs. */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal']

function isProxyAddress (entry: string): boolean {
  if (PROXY_RANGE_NAMES.includes(entry)) return true
  const [address = '', prefix, ...rest] = entry.split('/')
  const version = isIP(address)
  if (version === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  const bits = Number(prefix)
  return /^[0-9]+$/.test(prefix) && bits <= (version === 4 ? 32 : 128)
}

/** `https://app.example.com` or `http://localhost:3000`: what a browser sends in Origin. */
function isOrigin (value: string): boolean {
  // The URL parser takes * in a host name, where it would match nothing but itself.
  if (value.includes('*')) return false
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value
  } catch {
    return false
  }
}

/**
 * `https://*.example.com`: any subdomain of example.com at any depth (not example.com itself), over
 * that scheme and on that port. The wildcard is only ever the leftmost label, over a domain name.
 */
function isOriginPattern (value: string): boolean {
  const match = /^(https?):\/\/\*\.([^*]+)$/.exec(value)
  if (!match) return false
  const base = `${match[1]}://${match[2]}`
  return isOrigin(base) && isIP(new URL(base).hostname.replace(/^\[|\]$/g, '')) === 0
}

/** The shortest HS256 signing secret taskbase signs with, whether set in JWT_SECRET or kept for it. */
export const SIGNING_SECRET_MIN_BYTES = 32

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = []

  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    const value = Number(raw)
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`)
      return fallback
    }
    return value
  }

  /** Fractions allowed: SYNC_RETENTION_DAYS=0.5 is twelve hours. */
  const positiveNumber = (name: string, fallback: number, max: number): number => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    const value = Number(raw)
    if (!Number.isFinite(value) || value <= 0 || value > max) {
      problems.push(`${name} must be a number above 0 and at most ${max}, got "${raw}"`)
      return fallback
    }
    return value
  }

  const logLevel = env.LOG_LEVEL || 'info'
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)

  const databaseUrl = env.DATABASE_URL || undefined
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    // Never echo the URL: it usually holds a password.
    problems.push('DATABASE_URL must start with postgres:// or postgresql://')
  }

  const jwtSecret = env.JWT_SECRET || undefined
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < SIGNING_SECRET_MIN_BYTES) {
    problems.push(`JWT_SECRET must be at least ${SIGNING_SECRET_MIN_BYTES} bytes; generate one with: openssl rand -base64 48`)
  }

  const jwksUrl = env.AUTH_JWKS_URL || undefined
  if (jwksUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(jwksUrl)) {
    problems.push(`AUTH_JWKS_URL must be an http(s) URL such as https://app.example.com/api/auth/jwks, got "${jwksUrl}"`)
  }
  const sharedSecret = env.AUTH_SHARED_SECRET || undefined
  if (sharedSecret !== undefined && Buffer.byteLength(sharedSecret) < 32) {
    problems.push('AUTH_SHARED_SECRET must be at least 32 bytes (the HS256 secret your identity provider signs with)')
  }
  if (sharedSecret !== undefined && sharedSecret === jwtSecret) {
    // Each would accept the other's tokens: the provider could mint ours, and ours pass as the provider's.
    problems.push('AUTH_SHARED_SECRET must differ from JWT_SECRET: the identity provider\'s secret and taskbase\'s own are separate keys')
  }

  const subjectClaim = (env.AUTH_SUBJECT_CLAIM ?? '').trim() || 'sub'
  if (!/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/.test(subjectClaim)) {
    problems.push(`AUTH_SUBJECT_CLAIM must be a claim name or a dotted path such as user.id, got "${subjectClaim}"`)
  }

  const trustProxyRaw = (env.TRUST_PROXY ?? '').trim()
  let trustProxy: Config['trustProxy'] = false
  if (trustProxyRaw === '' || trustProxyRaw === 'false') trustProxy = false
  else if (trustProxyRaw === 'true') trustProxy = true
  else {
    const entries = trustProxyRaw.split(',').map((e) => e.trim()).filter((e) => e !== '')
    const bad = entries.filter((e) => !isProxyAddress(e))
    if (bad.length > 0 || entries.length === 0) {
      problems.push(`TRUST_PROXY must be true, false, or a comma-separated list of proxy addresses/CIDRs (e.g. 10.0.0.0/8,loopback); "${bad.join(', ')}" is none of those`)
    } else {
      trustProxy = entries
    }
  }

  const metricsToken = env.METRICS_TOKEN || undefined
  if (metricsToken !== undefined && Buffer.byteLength(metricsToken) < 16) {
    problems.push('METRICS_TOKEN must be at least 16 bytes; generate one with: openssl rand -base64 24')
  }

  const workersRaw = (env.WORKERS ?? '').trim()
  let workers = 1
  if (workersRaw === 'auto') workers = availableParallelism()
  else if (workersRaw !== '') {
    workers = Number(workersRaw)
    if (!/^[0-9]+$/.test(workersRaw) || workers < 1 || workers > 256) {
      problems.push(`WORKERS must be a whole number from 1 to 256, or auto (one per core), got "${workersRaw}"`)
      workers = 1
    }
  }
  if (workers > 1 && databaseUrl === undefined) {
    problems.push('WORKERS above 1 needs DATABASE_URL: the embedded database belongs to one process (unset WORKERS, or use a PostgreSQL server)')
  }

  const corsOrigins = (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter((o) => o !== '')
  const badOrigins = corsOrigins.filter((o) => o !== '*' && !isOrigin(o) && !isOriginPattern(o))
  if (badOrigins.length > 0) {
    problems.push('CORS_ORIGINS must be * or a comma-separated list of origins such as https://app.example.com,http://localhost:3000 ' +
      '(scheme, host and port only, no path); an origin may start with *. to allow every subdomain of a domain (https://*.example.com), ' +
      `and * appears nowhere else; "${badOrigins.join(', ')}" is not one`)
  }
  if (corsOrigins.includes('*') && corsOrigins.length > 1) problems.push('CORS_ORIGINS is either * or a list of origins, not both')

  const preparedRaw = (env.DATABASE_PREPARED_STATEMENTS ?? 'auto').trim() || 'auto'
  if (!['auto', 'true', 'false'].includes(preparedRaw)) {
    problems.push(`DATABASE_PREPARED_STATEMENTS must be auto, true or false, got "${preparedRaw}"`)
  }

  const scheduleRaw = (env.WEBHOOKS_RETRY_SCHEDULE ?? '').trim() || '5s,5m,30m,2h,5h,10h,10h'
  const webhooksRetrySchedule = parseRetrySchedule(scheduleRaw)
  if (webhooksRetrySchedule === undefined) {
    problems.push('WEBHOOKS_RETRY_SCHEDULE must be a comma-separated list of 1 to 20 delays, each a whole number with a unit ' +
      `s, m or h, from 1s to 24h (such as 5s,5m,30m,2h), got "${scheduleRaw}"`)
  }
  const allowPrivateRaw = (env.WEBHOOKS_ALLOW_PRIVATE ?? '').trim() || 'false'
  if (!['true', 'false'].includes(allowPrivateRaw)) problems.push(`WEBHOOKS_ALLOW_PRIVATE must be true or false, got "${allowPrivateRaw}"`)

  const config: Config = {
    port: integer('PORT', 3000, 0, 65_535),
    host: env.HOST || '127.0.0.1',
    logLevel,
    databaseUrl,
    databaseDirectUrl: env.DATABASE_DIRECT_URL || undefined,
    databasePoolSize: integer('DATABASE_POOL_SIZE', 10, 1, 1000),
    databaseReadConnections: integer('DATABASE_READ_CONNECTIONS', 4, 0, 100),
    dataDir: resolve(env.DATA_DIR || 'data'),
    jwtSecret,
    jwtIssuer: env.JWT_ISSUER || 'taskbase',
    jwtAudience: env.JWT_AUDIENCE || 'taskbase',
    accessTokenTtlSeconds: integer('ACCESS_TOKEN_TTL_SECONDS', 15 * 60, 10, 24 * 60 * 60),
    refreshTokenTtlDays: integer('REFRESH_TOKEN_TTL_DAYS', 30, 1, 365),
    syncRetentionDays: positiveNumber('SYNC_RETENTION_DAYS', 30, 3650),
    bodyLimitBytes: integer('BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024),
    requestTimeoutMs: integer('REQUEST_TIMEOUT_MS', 30_000, 1000, 600_000),
    externalAuth: Object.freeze({
      jwksUrl,
      sharedSecret,
      issuer: env.AUTH_ISSUER || undefined,
      audience: env.AUTH_AUDIENCE || undefined,
      jwksCooldownMs: integer('AUTH_JWKS_REFRESH_COOLDOWN_SECONDS', 10, 0, 3600) * 1000,
      subjectClaim,
    }),
    trustProxy,
    rateLimits: Object.freeze({
      loginFailures: integer('RATE_LIMIT_LOGIN_FAILURES', 10, 0, 1_000_000),
      loginWindowSeconds: integer('RATE_LIMIT_LOGIN_WINDOW_SECONDS', 15 * 60, 1, 7 * 24 * 60 * 60),
      authPerMinute: integer('RATE_LIMIT_AUTH_PER_MINUTE', 100, 0, 1_000_000),
      apiPerMinute: integer('RATE_LIMIT_API_PER_MINUTE', 1200, 0, 1_000_000),
    }),
    metricsToken,
    eventStreamsPerUser: integer('EVENT_STREAMS_PER_USER', 10, 1, 10_000),
    eventHeartbeatMs: integer('EVENT_HEARTBEAT_SECONDS', 15, 1, 300) * 1000,
    tasksPerUserMax: integer('TASKS_PER_USER_MAX', 100_000, 1, 100_000_000),
    projectsPerUserMax: integer('PROJECTS_PER_USER_MAX', 1_000, 1, 100_000),
    corsOrigins: Object.freeze(corsOrigins),
    workers,
    databasePreparedStatements: preparedRaw === 'true' ? true : preparedRaw === 'false' ? false : 'auto',
    reminderGraceMinutes: integer('REMINDER_GRACE_MINUTES', 60, 0, 525_600),
    jobsLeaseSeconds: integer('JOBS_LEASE_SECONDS', 30, 1, 30),
    webhooksRetrySchedule: Object.freeze(webhooksRetrySchedule ?? []),
    webhooksAllowPrivate: allowPrivateRaw === 'true',
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze(config)
}

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n- ${problems.join('\n- ')}`)
  }
}
