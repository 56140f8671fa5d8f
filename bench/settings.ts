/** The API benchmark's settings: the only reader of its environment variables, every problem reported at once. */
import { accessSync, constants } from 'node:fs'
import { delimiter, join, resolve } from 'node:path'
import { LOOPBACK } from './lib.js'
import { SCENARIO_NAMES, type ScenarioName } from './scenarios.js'

export type GeneratorName = 'wrk' | 'autocannon'

export interface Settings {
  durationSeconds: number
  warmupSeconds: number
  users: number
  tasksPerUser: number
  /** One closed-loop run per entry, for each of list, read, create and mixed. */
  connections: number[]
  /** Connections of the paced scenario, one simulated user each. */
  pacedUsers: number
  scenarios: ScenarioName[]
  generator: GeneratorName
  /** The wrk executable found on PATH; undefined with autocannon. */
  wrkPath: string | undefined
  /** Whether the server counts requests against its per-user API limit (set too high to refuse). */
  apiLimit: boolean
  /** From BENCH_SERVER_ENV, applied over the benchmark's own server settings. */
  serverEnv: Record<string, string>
  /** Admin URL of a server PostgreSQL; undefined means the embedded database. */
  databaseUrl: string | undefined
  outPath: string | undefined
}

const WARMUP_SECONDS = 5
const MAX_CONNECTIONS = 50_000
/** The benchmark decides where the server listens and which database it uses. */
const RESERVED_SERVER_ENV = new Set(['HOST', 'PORT', 'DATA_DIR', 'DATABASE_URL'])

export function readSettings (env: NodeJS.ProcessEnv): Settings {
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

  const durationSeconds = integer('BENCH_DURATION', 15, 1, 600)
  const connections = readConnections(env.BENCH_CONNECTIONS, problems)
  const { generator, wrkPath } = readGenerator(env.BENCH_GENERATOR, env.PATH, problems)
  const apiLimit = env.BENCH_API_LIMIT || 'on'
  if (apiLimit !== 'on' && apiLimit !== 'off') problems.push(`BENCH_API_LIMIT must be "on" or "off", got "${apiLimit}"`)

  const settings: Settings = {
    durationSeconds,
    warmupSeconds: Math.min(WARMUP_SECONDS, durationSeconds),
    users: integer('BENCH_USERS', 200, 1, 100_000),
    tasksPerUser: integer('BENCH_TASKS', 50, 1, 10_000),
    connections,
    pacedUsers: integer('BENCH_PACED_USERS', 1_000, 1, MAX_CONNECTIONS),
    scenarios: readScenarios(env.BENCH_SCENARIOS, problems),
    generator,
    wrkPath,
    apiLimit: apiLimit !== 'off',
    serverEnv: readServerEnv(env.BENCH_SERVER_ENV, problems),
    databaseUrl: readDatabaseUrl(env.BENCH_DATABASE_URL, problems),
    outPath: env.BENCH_OUT ? resolve(env.BENCH_OUT) : undefined,
  }
  if (problems.length > 0) throw new Error(`Invalid benchmark settings:\n- ${problems.join('\n- ')}`)
  return settings
}

function readConnections (raw: string | undefined, problems: string[]): number[] {
  const values = (raw || '64,1000').split(',').map((part) => Number(part.trim()))
  if (values.some((value) => !Number.isInteger(value) || value < 1 || value > MAX_CONNECTIONS)) {
    problems.push(`BENCH_CONNECTIONS must be a comma-separated list of whole numbers from 1 to ${MAX_CONNECTIONS}, got "${raw}"`)
    return []
  }
  return values
}

function readScenarios (raw: string | undefined, problems: string[]): ScenarioName[] {
  if (!raw) return [...SCENARIO_NAMES]
  const names = raw.split(',').map((name) => name.trim())
  const unknown = names.filter((name) => !(SCENARIO_NAMES as readonly string[]).includes(name))
  if (unknown.length > 0) {
    problems.push(`BENCH_SCENARIOS must be a comma-separated list of ${SCENARIO_NAMES.join(', ')}; unknown: ${unknown.join(', ')}`)
  }
  return names as ScenarioName[]
}

/** wrk when it is on PATH (it costs the shared CPUs far less than autocannon), unless BENCH_GENERATOR says otherwise. */
function readGenerator (raw: string | undefined, path: string | undefined, problems: string[]): { generator: GeneratorName, wrkPath: string | undefined } {
  const wrkPath = findExecutable('wrk', path ?? '')
  if (raw === 'autocannon') return { generator: 'autocannon', wrkPath: undefined }
  if (raw === 'wrk') {
    if (wrkPath === undefined) problems.push('BENCH_GENERATOR=wrk, but wrk is not on PATH; install it with: apt-get install wrk')
    return { generator: 'wrk', wrkPath }
  }
  if (raw) problems.push(`BENCH_GENERATOR must be "wrk" or "autocannon" (or unset: wrk when on PATH), got "${raw}"`)
  return wrkPath === undefined ? { generator: 'autocannon', wrkPath } : { generator: 'wrk', wrkPath }
}

function findExecutable (name: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue
    try {
      accessSync(join(dir, name), constants.X_OK)
      return join(dir, name)
    } catch { /* not in this directory */ }
  }
  return undefined
}

/** `WORKERS=2 DATABASE_POOL_SIZE=20`: space-separated KEY=VALUE pairs, values without spaces. */
function readServerEnv (raw: string | undefined, problems: string[]): Record<string, string> {
  const serverEnv: Record<string, string> = {}
  for (const pair of (raw ?? '').split(/\s+/).filter(Boolean)) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair)
    if (!match) {
      problems.push(`BENCH_SERVER_ENV must be space-separated KEY=VALUE pairs; "${pair.split('=')[0]}" is not one`)
    } else if (RESERVED_SERVER_ENV.has(match[1]!)) {
      problems.push(`BENCH_SERVER_ENV must not set ${match[1]}: the benchmark chooses it (use BENCH_DATABASE_URL for PostgreSQL)`)
    } else {
      serverEnv[match[1]!] = match[2]!
    }
  }
  return serverEnv
}

function readDatabaseUrl (raw: string | undefined, problems: string[]): string | undefined {
  if (!raw) return undefined
  let url: URL | undefined
  try { url = new URL(raw) } catch { /* reported below */ }
  // Never echo the URL: it may hold a password.
  if (!url || !/^postgres(ql)?:$/.test(url.protocol)) {
    problems.push('BENCH_DATABASE_URL must be a postgres:// or postgresql:// URL')
  } else if (!LOOPBACK.has(url.hostname) || url.searchParams.has('host')) {
    // The benchmark creates and drops a database there and loads it hard: loopback only.
    problems.push('BENCH_DATABASE_URL must point at 127.0.0.1, localhost or [::1]')
  }
  return raw
}

/** BENCH_SERVER_ENV for the report, without the values of anything that looks like a secret. */
export function describeServerEnv (serverEnv: Record<string, string>): string {
  return Object.entries(serverEnv)
    .map(([key, value]) => `${key}=${/SECRET|PASSWORD|TOKEN|KEY|URL/i.test(key) ? '***' : value}`)
    .join(' ')
}
