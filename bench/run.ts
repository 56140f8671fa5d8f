/**
 * Load benchmark of the task API: the real server in a child process, seeded through the HTTP API,
 * then one autocannon run per scenario. Prints requests per second and latency percentiles.
 *
 *   npm run bench                                  # embedded database (PGlite) in a fresh temp dir
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench
 *   BENCH_DURATION=5 BENCH_CONNECTIONS=50 npm run bench
 *   BENCH_COUNT_API_LIMIT=1 ...     # count API requests per user as in production (limits are off otherwise)
 *
 * With BENCH_DATABASE_URL the server runs on a throwaway database `taskbase_bench_<random>` created
 * on that server and dropped at the end. Everything listens on and connects to the loopback only.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon, { type Options, type Result } from 'autocannon'
import {
  call, createThrowawayDatabase, expectStatus, inParallel, LOOPBACK, PASSWORD, startServer, stopServer, tail,
} from './lib.js'

const SEEDED_TASKS = 2_000
const OTHER_USERS = 2
const TASKS_PER_OTHER_USER = 100
/** Parallel requests while seeding: enough to be quick, few enough not to queue on PGlite. */
const SEED_CONCURRENCY = 16
const PRIORITIES = ['none', 'low', 'medium', 'high'] as const

interface Settings {
  durationSeconds: number
  connections: number
  /** Admin URL of a server PostgreSQL; undefined means the embedded database. */
  databaseUrl: string | undefined
}

function readSettings (env: NodeJS.ProcessEnv): Settings {
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
  const durationSeconds = integer('BENCH_DURATION', 10, 1, 120)
  const connections = integer('BENCH_CONNECTIONS', 20, 1, 500)
  const databaseUrl = env.BENCH_DATABASE_URL || undefined
  if (databaseUrl !== undefined) {
    let url: URL | undefined
    try { url = new URL(databaseUrl) } catch { /* reported below */ }
    // Never echo the URL: it may hold a password.
    if (!url || !/^postgres(ql)?:$/.test(url.protocol)) {
      problems.push('BENCH_DATABASE_URL must be a postgres:// or postgresql:// URL')
    } else if (!LOOPBACK.has(url.hostname) || url.searchParams.has('host')) {
      // The benchmark creates and drops a database there and loads it hard: loopback only.
      problems.push('BENCH_DATABASE_URL must point at 127.0.0.1, localhost or [::1]')
    }
  }
  if (problems.length > 0) throw new Error(`Invalid benchmark settings:\n- ${problems.join('\n- ')}`)
  return { durationSeconds, connections, databaseUrl }
}

const VERBS = ['Write', 'Review', 'Call', 'Email', 'Fix', 'Plan', 'Book', 'Pay', 'Clean', 'Read']
const NOUNS = ['report', 'invoice', 'dentist', 'landlord', 'roadmap', 'budget', 'flight', 'garden', 'slides', 'contract', 'newsletter']
const TAGS = ['Work', 'home', 'urgent', 'errand', 'reading', 'health']
const DAY_MS = 24 * 60 * 60 * 1000

/** Task number `i`: varied priority, 0-3 tags, a due date within ±120 days on four tasks in five. */
function seedTask (i: number, now: number) {
  const tags = TAGS.filter((_, t) => (i + t) % (t + 2) === 0)
  return {
    title: `${VERBS[i % VERBS.length]} ${NOUNS[(i * 7) % NOUNS.length]} ${i}`,
    ...(i % 3 !== 0 && { description: `Remember the ${NOUNS[(i * 3) % NOUNS.length]} before the ${NOUNS[(i * 5) % NOUNS.length]}.` }),
    priority: PRIORITIES[(i * 7 + (i >> 3)) % PRIORITIES.length],
    tags,
    ...(i % 5 !== 0 && { dueAt: new Date(now + (((i * 37) % 240) - 120) * DAY_MS + (i % 1440) * 60_000).toISOString() }),
  }
}

interface Account { token: string, taskIds: string[] }

async function register (baseUrl: string, label: string): Promise<Account> {
  const email = `bench-${label}-${randomBytes(4).toString('hex')}@example.com`
  const res = await call(baseUrl, 'POST', '/api/v1/auth/register', undefined, { email, password: PASSWORD, name: label })
  expectStatus(res, 201, `registering ${label}`)
  return { token: res.body.accessToken, taskIds: [] }
}

async function seedTasks (baseUrl: string, account: Account, count: number): Promise<void> {
  const now = Date.now()
  const indexes = Array.from({ length: count }, (_, i) => i)
  account.taskIds = await inParallel(indexes, SEED_CONCURRENCY, async (i) => {
    const res = await call(baseUrl, 'POST', '/api/v1/tasks', account.token, seedTask(i, now))
    expectStatus(res, 201, `creating task ${i}`)
    return res.body.id as string
  })
}

interface Scenario {
  name: string
  request: NonNullable<Options['requests']>[number]
}

function scenarios (account: Account): Scenario[] {
  const ids = account.taskIds
  const randomId = () => ids[Math.floor(Math.random() * ids.length)]!
  let patches = 0
  const json = { 'content-type': 'application/json' }
  // Reads first: the POST scenario adds thousands of tasks to this user's list.
  return [
    { name: 'GET /tasks?limit=20', request: { method: 'GET', path: '/api/v1/tasks?limit=20' } },
    { name: 'GET /tasks?tag=work&sort=dueAt', request: { method: 'GET', path: '/api/v1/tasks?tag=work&sort=dueAt' } },
    {
      name: 'GET /tasks/:id',
      request: { method: 'GET', setupRequest: (req) => ({ ...req, path: `/api/v1/tasks/${randomId()}` }) },
    },
    {
      name: 'POST /tasks',
      request: {
        method: 'POST',
        path: '/api/v1/tasks',
        headers: json,
        body: JSON.stringify({ title: 'Benchmark task', description: 'Created under load', priority: 'medium', tags: ['bench'] }),
      },
    },
    {
      name: 'PATCH /tasks/:id',
      request: {
        method: 'PATCH',
        headers: json,
        setupRequest: (req) => ({
          ...req,
          path: `/api/v1/tasks/${randomId()}`,
          body: JSON.stringify({ priority: PRIORITIES[patches++ % PRIORITIES.length] }),
        }),
      },
    },
  ]
}

/** One request of the scenario outside the load: a 4xx here would make the numbers meaningless. */
async function smokeTest (baseUrl: string, token: string, { name, request }: Scenario): Promise<void> {
  const { path, method = 'GET', body } = request.setupRequest ? request.setupRequest({ ...request }, {}) : request
  const res = await call(baseUrl, method, path!, token, body === undefined ? undefined : JSON.parse(body))
  if (res.status < 200 || res.status > 299) throw new Error(`${name}: ${res.status} ${JSON.stringify(res.body)}`)
}

async function measure (baseUrl: string, token: string, { request }: Scenario, settings: Settings): Promise<Result> {
  return autocannon({
    url: baseUrl,
    connections: settings.connections,
    duration: settings.durationSeconds,
    warmup: { connections: settings.connections, duration: 1 },
    // setupRequest spreads the request it is given, so the authorization header stays.
    requests: [{ ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }],
  })
}

function printTable (rows: Array<{ name: string, result: Result }>): void {
  const ms = (value: number) => value.toFixed(1)
  const header = ['scenario', 'req/s', 'p50 ms', 'p97.5 ms', 'p99 ms', 'non-2xx', 'errors']
  const body = rows.map(({ name, result }) => [
    name,
    Math.round(result.requests.average).toLocaleString('en-US'),
    ms(result.latency.p50),
    ms(result.latency.p97_5),
    ms(result.latency.p99),
    String(result.non2xx),
    String(result.errors + result.timeouts),
  ])
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)))
  const line = (cells: string[]) => `| ${cells.map((cell, c) => c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)).join(' | ')} |`
  console.log(line(header))
  console.log(`|${widths.map((w, c) => c === 0 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`).join('|')}|`)
  for (const row of body) console.log(line(row))
  for (const { name, result } of rows) {
    if (result.non2xx > 0) {
      const codes = Object.entries(result.statusCodeStats).map(([code, { count }]) => `${code}: ${count}`).join(', ')
      console.log(`${name}: status codes ${codes}`)
    }
  }
}

async function main (): Promise<void> {
  const settings = readSettings(process.env)
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
      console.error(`${signal}: stopping the server and cleaning up`)
      void cleanUp().finally(() => process.exit(130))
    })
  }

  try {
    const tmp = await mkdtemp(join(tmpdir(), 'taskbase-bench-'))
    cleanups.push(() => rm(tmp, { recursive: true, force: true }))
    const logPath = join(tmp, 'server.log')

    let serverEnv: Record<string, string>
    let databaseLabel: string
    if (settings.databaseUrl === undefined) {
      serverEnv = { DATA_DIR: join(tmp, 'data') }
      databaseLabel = 'embedded PGlite (fresh temp DATA_DIR)'
    } else {
      const database = await createThrowawayDatabase(settings.databaseUrl)
      cleanups.push(database.drop)
      serverEnv = { DATABASE_URL: database.url, JWT_SECRET: randomBytes(36).toString('base64') } // 48 characters
      databaseLabel = `PostgreSQL (throwaway database ${new URL(database.url).pathname.slice(1)})`
    }

    if (process.env.BENCH_COUNT_API_LIMIT === '1') {
      // Count every API request against a limit too high to reach: measures what the per-user
      // counter costs, without 429s.
      serverEnv.RATE_LIMIT_API_PER_MINUTE = '1000000'
      databaseLabel += ', API rate-limit counting on'
    }
    const server = await startServer(serverEnv, logPath)
    cleanups.push(() => stopServer(server))
    try {
      console.log(`taskbase bench: ${databaseLabel}, server pid ${server.child.pid} at ${server.baseUrl}`)
      const seedStart = performance.now()
      const [measured, ...others] = await inParallel(
        ['main', ...Array.from({ length: OTHER_USERS }, (_, i) => `other${i + 1}`)], 4,
        (label) => register(server.baseUrl, label))
      await seedTasks(server.baseUrl, measured!, SEEDED_TASKS)
      for (const other of others) await seedTasks(server.baseUrl, other, TASKS_PER_OTHER_USER)
      console.log(`seeded ${1 + OTHER_USERS} users and ${SEEDED_TASKS + OTHER_USERS * TASKS_PER_OTHER_USER} tasks ` +
        `(${SEEDED_TASKS} for the measured user) through the API in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`)
      console.log(`${settings.connections} connections, ${settings.durationSeconds} s per scenario after a 1 s warm-up; ` +
        `Node ${process.version}, ${cpus().length} CPUs shared by server, database and load generator`)
      // Other work on the machine skews every figure: say how busy it was.
      console.log(`load average before: ${loadavg()[0]!.toFixed(2)}\n`)

      const rows: Array<{ name: string, result: Result }> = []
      for (const scenario of scenarios(measured!)) {
        await smokeTest(server.baseUrl, measured!.token, scenario)
        process.stderr.write(`running ${scenario.name} ...\n`)
        rows.push({ name: scenario.name, result: await measure(server.baseUrl, measured!.token, scenario, settings) })
      }
      console.log(`\nload average after: ${loadavg()[0]!.toFixed(2)}`)
      printTable(rows)
    } catch (error) {
      console.error(`server output (last lines):\n${tail(logPath)}`)
      throw error
    }
  } finally {
    await cleanUp()
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
