/**
 * Load benchmark of the task API: the real server in a child process, seeded through the HTTP API with
 * many users, then closed-loop runs (list, read, create, mixed) at each BENCH_CONNECTIONS and a paced run
 * of BENCH_PACED_USERS users who think 0.5-1.5 s between requests. Every request is a random user's, on
 * one of that user's own tasks. Prints a markdown table; BENCH_OUT also gets it as JSON.
 *
 *   npm run bench:api                               # embedded database (PGlite) in a fresh temp dir
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:api
 *   BENCH_DURATION=3 BENCH_USERS=20 BENCH_TASKS=10 BENCH_PACED_USERS=100 npm run bench:api   # a quick look
 *   BENCH_SCENARIOS=read,paced BENCH_CONNECTIONS=64 BENCH_SERVER_ENV='WORKERS=2' BENCH_OUT=bench.json ...
 *   BENCH_GENERATOR=autocannon ...                  # instead of wrk, which is used when it is on PATH
 *   BENCH_API_LIMIT=off ...                         # the per-user API limit off instead of counting
 *
 * With BENCH_DATABASE_URL the server runs on a throwaway database `taskbase_bench_<random>` created on
 * that server and dropped at the end. Everything listens on and connects to the loopback only. 1,000
 * connections need as many file descriptors in the server and in the generator: see `openFileWarning`.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createThrowawayDatabase, startServer, stopServer, tail } from './lib.js'
import { runNodeLoad } from './node-load.js'
import { printReport, writeReport, type Report, type RunResult } from './results.js'
import { REQUESTS, requestFor, SCENARIOS, type RequestKind, type Scenario, type SeededUser } from './scenarios.js'
import { seedUsers } from './seed.js'
import { describeServerEnv, readSettings, type Settings } from './settings.js'
import { runWrk, WRK_THREADS, writeUsersFile } from './wrk.js'

/** Runs `scenario` with `connections` for `durationSeconds` and measures it. */
type Load = (scenario: Scenario, connections: number, durationSeconds: number) => Promise<RunResult>

interface PlannedRun { scenario: Scenario, connections: number }

/** Descriptors a process needs besides its connections: the database, logs, modules, the seeding client. */
const SPARE_FILES = 256

async function main (): Promise<void> {
  const settings = readSettings(process.env)
  const loadAverageBefore = loadavg()
  const warnings = [openFileWarning(Math.max(...plan(settings).map((run) => run.connections)))]
    .filter((warning): warning is string => warning !== undefined)
  for (const warning of warnings) console.error(`warning: ${warning}`)

  const stopping = new AbortController()
  const cleanups: Array<() => Promise<void>> = []
  let cleaning: Promise<void> | undefined
  // Last in, first out: the server stops before its database is dropped and its dir removed.
  const cleanUp = () => cleaning ??= (async () => {
    for (const step of cleanups.reverse()) {
      try { await step() } catch (error) { console.error('cleanup:', error instanceof Error ? error.message : error) }
    }
  })()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping the load, the server, and cleaning up`)
      stopping.abort()
      void cleanUp().finally(() => process.exit(130))
    })
  }

  try {
    const tmp = await mkdtemp(join(tmpdir(), 'taskbase-bench-'))
    cleanups.push(() => rm(tmp, { recursive: true, force: true }))
    const logPath = join(tmp, 'server.log')
    const { env: databaseEnv, label: database } = await prepareDatabase(settings, tmp, cleanups)
    const server = await startServer(serverEnvironment(settings, databaseEnv), logPath)
    cleanups.push(() => stopServer(server))
    try {
      console.error(`taskbase bench: ${database}, server pid ${server.child.pid} at ${server.baseUrl}, ` +
        `${settings.generator}, ${settings.durationSeconds} s per run`)
      const users = await seed(server.baseUrl, settings)
      await smokeTest(server.baseUrl, users[0]!)
      const load = await loadGenerator(settings, server.baseUrl, users, tmp, stopping.signal)

      const runs = await measure(settings, load, server.baseUrl, warnings, stopping.signal)
      const report: Report = {
        generator: settings.generator === 'wrk'
          ? `wrk (${settings.wrkPath}, ${WRK_THREADS} threads, bench/wrk.lua)`
          : 'autocannon (closed loops), bench/node-load.ts (paced)',
        database,
        serverEnv: describeServerEnv(settings.serverEnv),
        nodeVersion: process.version,
        cpus: cpus().length,
        loadAverageBefore,
        loadAverageAfter: loadavg(),
        warnings,
        runs,
      }
      printReport(report)
      if (settings.outPath) {
        await writeReport(settings.outPath, report)
        console.log(`JSON written to ${settings.outPath}`)
      }
    } catch (error) {
      if (!stopping.signal.aborted) console.error(`server output (last lines):\n${tail(logPath)}`)
      throw error
    }
  } finally {
    await cleanUp()
  }
}

/** A warm-up that every kind of request goes through, then every planned run, each on a settled server. */
async function measure (settings: Settings, load: Load, baseUrl: string, warnings: string[], signal: AbortSignal): Promise<RunResult[]> {
  const warmupConnections = settings.connections[0] ?? settings.pacedUsers
  console.error(`warm-up: mixed at ${warmupConnections} connections for ${settings.warmupSeconds} s`)
  await load(SCENARIOS.mixed, warmupConnections, settings.warmupSeconds)
  const runs: RunResult[] = []
  for (const { scenario, connections } of plan(settings)) {
    if (!await settle(baseUrl, signal)) {
      warnings.push(`the server was still busy with earlier requests when ${scenario.name} at ${connections} started`)
    }
    console.error(`running ${scenario.name} at ${connections} connections for ${settings.durationSeconds} s`)
    runs.push(await load(scenario, connections, settings.durationSeconds))
  }
  return runs
}

/** The runs in order: each closed-loop scenario at every BENCH_CONNECTIONS, paced once with its users. */
function plan (settings: Settings): PlannedRun[] {
  return settings.scenarios.flatMap((name) => {
    const scenario = SCENARIOS[name]
    if (scenario.thinkMs) return [{ scenario, connections: settings.pacedUsers }]
    return settings.connections.map((connections) => ({ scenario, connections }))
  })
}

/**
 * Node raises its own soft limit to the hard one at start-up, and the server and wrk inherit it; a limit
 * still too low here can only be raised in the shell (or by root), not from Node.
 */
function openFileWarning (connections: number): string | undefined {
  let limits: string
  try { limits = readFileSync('/proc/self/limits', 'utf8') } catch { return undefined } // not Linux
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1])
  const needed = connections + SPARE_FILES
  if (!Number.isFinite(soft) || soft >= needed) return undefined
  return `the open-file limit is ${soft}, but ${connections} connections need about ${needed} descriptors in the ` +
    'server and in the load generator: run `ulimit -n 65536` in this shell first (or raise the hard limit as root); ' +
    'until then expect socket errors'
}

/** The server's database settings: a fresh DATA_DIR, or a throwaway database dropped at clean-up. */
async function prepareDatabase (settings: Settings, tmp: string, cleanups: Array<() => Promise<void>>):
  Promise<{ env: Record<string, string>, label: string }> {
  if (settings.databaseUrl === undefined) {
    return { env: { DATA_DIR: join(tmp, 'data') }, label: 'embedded PGlite (fresh temp DATA_DIR)' }
  }
  const database = await createThrowawayDatabase(settings.databaseUrl)
  cleanups.push(database.drop)
  return {
    env: { DATABASE_URL: database.url, JWT_SECRET: randomBytes(36).toString('base64') }, // 48 characters
    label: `PostgreSQL (throwaway database ${new URL(database.url).pathname.slice(1)})`,
  }
}

function serverEnvironment (settings: Settings, databaseEnv: Record<string, string>): Record<string, string> {
  return {
    ...databaseEnv,
    // The server's longest: tokens issued while seeding must outlast every run.
    ACCESS_TOKEN_TTL_SECONDS: String(24 * 60 * 60),
    // Seeding signs up hundreds of accounts from one address, and the load is one client.
    RATE_LIMIT_AUTH_PER_MINUTE: '0',
    RATE_LIMIT_LOGIN_FAILURES: '0',
    // Far above any rate reached here: the limiter counts every request, as in production, and never refuses.
    RATE_LIMIT_API_PER_MINUTE: settings.apiLimit ? '1000000' : '0',
    ...settings.serverEnv,
  }
}

async function seed (baseUrl: string, settings: Settings): Promise<SeededUser[]> {
  const started = performance.now()
  console.error(`seeding ${settings.users} users with ${settings.tasksPerUser} tasks each through the API`)
  const users = await seedUsers(baseUrl, settings.users, settings.tasksPerUser)
  console.error(`seeded in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return users
}

/** One request of each kind outside the load: a 4xx here would make every figure meaningless. */
async function smokeTest (baseUrl: string, user: SeededUser): Promise<void> {
  for (const kind of Object.keys(REQUESTS) as RequestKind[]) {
    const { method, path, headers, body } = requestFor(kind, user)
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body })
    const text = await res.text()
    if (!res.ok) throw new Error(`${kind}: ${method} ${path} answered ${res.status} ${text}`)
  }
}

async function loadGenerator (settings: Settings, baseUrl: string, users: SeededUser[], workDir: string,
  signal: AbortSignal): Promise<Load> {
  if (settings.generator === 'autocannon') {
    return (scenario, connections, seconds) => runNodeLoad(baseUrl, users, scenario, connections, seconds, signal)
  }
  const target = { wrkPath: settings.wrkPath!, baseUrl, workDir }
  await writeUsersFile(target, users)
  return (scenario, connections, seconds) => runWrk(target, scenario, connections, seconds, signal)
}

/**
 * Between runs: the requests a run left unanswered are still queued for the database, and would starve
 * the next run. Waits until a readiness check (a database round trip, queued behind them) is quick again;
 * false if it is not within a minute.
 */
async function settle (baseUrl: string, signal: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + 60_000
  await sleep(1_000, undefined, { signal })
  while (Date.now() < deadline) {
    const started = performance.now()
    try {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(10_000) })
      await res.arrayBuffer()
      if (res.ok && performance.now() - started < 50) return true
    } catch { signal.throwIfAborted() }
    await sleep(250, undefined, { signal })
  }
  return false
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
