/**
 * Reminder lateness (issue 19's target: p99 under 1 s on both databases): the built server
 * (`node dist/bundle/server.js`) in a child process, BENCH_REMINDERS (2,000) reminders created through the
 * API over BENCH_REMINDER_USERS (50) users, falling due in one minute, then how late each fired, read from
 * the database: reminder_changes.at (when it fired) - fire_at (when it was due). Two cases:
 *   spread:  their times spread evenly across one minute;
 *   instant: all at one instant.
 * Each case's reminders are all created before the first is due: the firing is measured alone. Beside
 * the lateness, the CPU time the server (and its PostgreSQL backends) spent firing, and the machine's
 * load average: on a shared machine lateness far above that CPU time was spent waiting for a core.
 *
 *   npm run bench:reminders                                                    # the embedded database (PGlite)
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:reminders   # and PostgreSQL
 *   BENCH_REMINDERS=500 BENCH_CASES=instant npm run bench:reminders                  # a quick look
 *
 * The embedded database is a fresh temp DATA_DIR, read after the server stopped; with
 * BENCH_DATABASE_URL (loopback only) a throwaway database `taskbase_bench_<random>` is created there
 * and dropped at the end.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { openEmbedded } from '../src/db/client.js'
import { statement } from '../src/db/sql.js'
import { buildServer, call, createThrowawayDatabase, expectStatus, inParallel, LOOPBACK, PASSWORD, startServer, stopServer, tail, type Server } from './lib.js'

type CaseName = 'spread' | 'instant'
const CASE_NAMES: CaseName[] = ['spread', 'instant']

interface Settings {
  reminders: number
  users: number
  cases: CaseName[]
  /**
   * Seconds from the start of a case's creates to its first reminder, room for every create first;
   * undefined: measured (`leadFor`).
   */
  leadSeconds: number | undefined
  databaseUrl: string | undefined
}

function readSettings (env: NodeJS.ProcessEnv): Settings {
  const problems: string[] = []
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    const value = Number(raw)
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`)
    return value
  }
  const cases = (env.BENCH_CASES || CASE_NAMES.join(',')).split(',').map((c) => c.trim()) as CaseName[]
  const unknown = cases.filter((c) => !CASE_NAMES.includes(c))
  if (unknown.length > 0) problems.push(`BENCH_CASES is a list of ${CASE_NAMES.join(', ')}; "${unknown.join(', ')}" is not one`)
  const databaseUrl = env.BENCH_DATABASE_URL || undefined
  if (databaseUrl !== undefined && !LOOPBACK.has(new URL(databaseUrl).hostname)) {
    problems.push('BENCH_DATABASE_URL must point at 127.0.0.1, localhost or [::1]: a database is created and dropped there')
  }
  const settings = {
    reminders: integer('BENCH_REMINDERS', 2_000, 1, 100_000),
    users: integer('BENCH_REMINDER_USERS', 50, 1, 10_000),
    cases,
    leadSeconds: env.BENCH_LEAD_SECONDS ? integer('BENCH_LEAD_SECONDS', 0, 1, 3_600) : undefined,
    databaseUrl,
  }
  if (problems.length > 0) throw new Error(`Invalid settings:\n- ${problems.join('\n- ')}`)
  return settings
}

interface User { id: string, token: string }

/** What one case measured, from the database; times in milliseconds. */
interface Lateness { fired: number, missed: number, p50: number, p99: number, max: number, firstFired: number, lastFired: number }
interface Row { database: string, case: CaseName, lateness: Lateness, cpuMs: number, load: number }

/** One row per case: the reminders due in [from, to] of these users. */
const LATENESS = statement(`select count(*) filter (where op = 'fired')::int as fired,
    count(*) filter (where op = 'missed')::int as missed,
    percentile_cont(0.5) within group (order by extract(epoch from at - fire_at)) * 1000 as p50,
    percentile_cont(0.99) within group (order by extract(epoch from at - fire_at)) * 1000 as p99,
    max(extract(epoch from at - fire_at)) * 1000 as max,
    extract(epoch from min(at) - min(fire_at)) * 1000 as "firstFired",
    extract(epoch from max(at) - min(fire_at)) * 1000 as "lastFired"
  from reminder_changes where user_id = any($1::uuid[]) and fire_at between $2::timestamptz and $3::timestamptz`)

/** A case's reminders (due from `from` to `to`), the CPU their firing took, the 1-minute load average after. */
interface CaseRun { name: CaseName, from: Date, to: Date, cpuMs: number, load: number }

/** The fire times of a case: evenly across one minute from `start`, or all at `start`. */
function fireTimes (name: CaseName, count: number, start: number): number[] {
  return Array.from({ length: count }, (_, i) => name === 'instant' ? start : start + Math.floor(i * 60_000 / count))
}

async function register (baseUrl: string, count: number): Promise<User[]> {
  const run = randomBytes(4).toString('hex')
  // Sign-ups hash a password each (argon2, CPU-bound): a few at a time saturate the server.
  return inParallel(Array.from({ length: count }, (_, i) => i), 8, async (i) => {
    const res = await call(baseUrl, 'POST', '/api/v1/auth/register', undefined, { email: `remind-${run}-${i}@example.com`, password: PASSWORD })
    expectStatus(res, 201, `registering user ${i}`)
    return { id: res.body.user.id as string, token: res.body.accessToken as string }
  })
}

/** The user's sync cursor now. */
async function cursorOf (baseUrl: string, user: User): Promise<string> {
  let page = await call(baseUrl, 'GET', '/api/v1/sync?limit=1000', user.token)
  while (page.body.hasMore) page = await call(baseUrl, 'GET', `/api/v1/sync?limit=1000&since=${encodeURIComponent(page.body.cursor)}`, user.token)
  expectStatus(page, 200, 'sync')
  return page.body.cursor
}

/** Reminder changes after `since`; the cursor to go on from. */
async function remindersSince (baseUrl: string, user: User, since: string): Promise<{ count: number, cursor: string }> {
  let count = 0
  let cursor = since
  for (;;) {
    const page = await call(baseUrl, 'GET', `/api/v1/sync?limit=1000&since=${encodeURIComponent(cursor)}`, user.token)
    expectStatus(page, 200, 'sync')
    count += page.body.changes.filter((change: { type: string }) => change.type === 'reminder').length
    cursor = page.body.cursor
    if (!page.body.hasMore) return { count, cursor }
  }
}

/**
 * Creates a case's reminders, one task each, over the users in turn; half relative (30 minutes
 * before the task's dueAt), half absolute. Waits until every one has fired, through /sync, asking
 * nothing while they fall due.
 */
async function runCase (baseUrl: string, pids: () => Promise<number[]>, users: User[], name: CaseName, settings: Settings, leadSeconds: number): Promise<CaseRun> {
  // Taken first: a firing that came before the cursor would never be counted.
  const cursors = await inParallel(users, 8, (user) => cursorOf(baseUrl, user))
  const start = Date.now() + leadSeconds * 1000
  const times = fireTimes(name, settings.reminders, start)
  const created = performance.now()
  await inParallel(times.map((at, i) => ({ at, i })), 16, async ({ at, i }) => {
    const user = users[i % users.length]!
    const fireAt = new Date(at)
    const body = i % 2 === 0
      ? { title: `Reminded ${name} ${i}`, dueAt: new Date(at + 30 * 60_000).toISOString(), reminders: [{ offsetMinutes: -30 }] }
      : { title: `Reminded ${name} ${i}`, reminders: [{ at: fireAt.toISOString() }] }
    expectStatus(await call(baseUrl, 'POST', '/api/v1/tasks', user.token, body), 201, `creating reminder ${i}`)
  })
  const createSeconds = (performance.now() - created) / 1000
  if (Date.now() >= start) {
    throw new Error(`creating the ${settings.reminders} reminders took ${createSeconds.toFixed(1)} s, past the first one's time: set BENCH_LEAD_SECONDS above ${leadSeconds}`)
  }
  console.error(`${name}: ${settings.reminders} reminders created in ${createSeconds.toFixed(1)} s; due ${((start - Date.now()) / 1000).toFixed(1)} s from now`)
  const last = Math.max(...times)
  const cpuMs = await cpuWhileFiring(pids, start - 200, last)
  const load = loadavg()[0]!
  let fired = 0
  for (const deadline = Date.now() + 120_000; ; await sleep(1_000)) {
    const counts = await inParallel(users.map((user, i) => ({ user, i })), 4, async ({ user, i }) => {
      const { count, cursor } = await remindersSince(baseUrl, user, cursors[i]!)
      cursors[i] = cursor
      return count
    })
    fired += counts.reduce((sum, count) => sum + count, 0)
    if (fired >= settings.reminders) break
    if (Date.now() > deadline) throw new Error(`${name}: only ${fired} of ${settings.reminders} reminders fired within 2 minutes of the last one's time`)
  }
  return { name, from: new Date(Math.min(...times)), to: new Date(last), cpuMs, load }
}

/** CPU time (user + system) a process has used so far, in ms; undefined once it is gone. Linux counts it in ticks of 10 ms. */
function cpuMsOf (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // from field 3, state
    return (Number(fields[11]) + Number(fields[12])) * 10 // fields 14 and 15, utime and stime
  } catch {
    return undefined
  }
}

/**
 * The CPU time the server, and on PostgreSQL the database's backends, spend from `from` until the
 * firings are done: sampled every 100 ms until `until` has passed and they have been idle (under
 * 10 ms a sample) for half a second. Unlike lateness, it does not grow when other work on the
 * machine takes the cores: lateness far above it means the firings waited for a CPU.
 */
async function cpuWhileFiring (pids: () => Promise<number[]>, from: number, until: number): Promise<number> {
  await sleep(Math.max(0, from - Date.now()))
  const first = new Map<number, number>()
  const latest = new Map<number, number>()
  let sampled = false
  const sample = async () => {
    for (const pid of await pids()) {
      const used = cpuMsOf(pid)
      if (used === undefined) continue
      // A process that appears later (a new pool connection) spent all its CPU in the window.
      if (!first.has(pid)) first.set(pid, sampled ? 0 : used)
      latest.set(pid, used)
    }
    sampled = true
    let total = 0
    for (const [pid, used] of latest) total += used - first.get(pid)!
    return total
  }
  let total = await sample()
  for (let idle = 0; Date.now() < until || idle < 5;) {
    if (Date.now() > until + 120_000) break
    await sleep(100)
    const before = total
    total = await sample()
    idle = total - before < 10 ? idle + 1 : 0
  }
  return total
}

/** Tasks created to time creates, before any reminder: the first half warms the server up, the second is timed. */
const CALIBRATION_TASKS = 200

/**
 * Seconds that leave room to create `reminders` before the first is due: twice what creating as
 * many plain tasks takes at the rate measured here (no reminder: nothing fires), plus 5.
 */
async function leadFor (baseUrl: string, users: User[], reminders: number): Promise<number> {
  const create = (i: number) => call(baseUrl, 'POST', '/api/v1/tasks', users[i % users.length]!.token, { title: `Calibration ${i}` })
    .then((res) => expectStatus(res, 201, 'creating a task'))
  const half = CALIBRATION_TASKS / 2
  await inParallel(Array.from({ length: half }, (_, i) => i), 16, create)
  const started = performance.now()
  await inParallel(Array.from({ length: half }, (_, i) => half + i), 16, create)
  const perTask = (performance.now() - started) / 1000 / half
  return Math.ceil(2 * perTask * reminders + 5)
}

interface Target {
  label: string
  env: Record<string, string>
  /** The processes doing the firing: the server's, and the database's backends for it on PostgreSQL. */
  pids (serverPid: number): Promise<number[]>
  /** After the server stopped: each case's lateness, read from its database. */
  read (users: User[], runs: CaseRun[]): Promise<Lateness[]>
}

const readLateness = async (query: (values: unknown[]) => Promise<Lateness[]>, users: User[], runs: CaseRun[]) => {
  const rows: Lateness[] = []
  for (const run of runs) rows.push((await query([users.map((user) => user.id), run.from.toISOString(), run.to.toISOString()]))[0]!)
  return rows
}

async function embeddedTarget (tmp: string): Promise<Target> {
  const dataDir = join(tmp, 'data')
  return {
    label: 'embedded PGlite',
    env: { DATA_DIR: dataDir },
    // The database is a thread of the server's.
    pids: async (serverPid) => [serverPid],
    async read (users, runs) {
      // The server has stopped and released the data dir: open it here.
      const database = await openEmbedded(dataDir)
      try {
        return await readLateness((values) => database.query<Lateness>(LATENESS, values), users, runs)
      } finally {
        await database.close()
      }
    },
  }
}

async function postgresTarget (adminUrl: string, cleanups: Array<() => Promise<void>>): Promise<Target> {
  const database = await createThrowawayDatabase(adminUrl)
  cleanups.push(database.drop)
  // PostgreSQL runs on this machine (BENCH_DATABASE_URL is a loopback address): its backends' pids are ours to read.
  const monitor = new pg.Client({ connectionString: database.url })
  await monitor.connect()
  cleanups.push(() => monitor.end())
  return {
    label: 'PostgreSQL',
    env: { DATABASE_URL: database.url, JWT_SECRET: randomBytes(36).toString('base64') },
    async pids (serverPid) {
      const { rows } = await monitor.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()')
      return [serverPid, ...rows.map((row) => row.pid)]
    },
    async read (users, runs) {
      const client = new pg.Client({ connectionString: database.url })
      await client.connect()
      try {
        return await readLateness(async (values) => (await client.query(LATENESS.text, values)).rows, users, runs)
      } finally {
        await client.end()
      }
    },
  }
}

async function measure (target: Target, settings: Settings, tmp: string): Promise<Row[]> {
  const logPath = join(tmp, `server-${target.label.replace(/\W+/g, '-')}.log`)
  let server: Server | undefined
  try {
    server = await startServer({ ...target.env, ACCESS_TOKEN_TTL_SECONDS: String(24 * 60 * 60), RATE_LIMIT_LOGIN_FAILURES: '0' }, logPath, { built: true })
    console.error(`${target.label}: server pid ${server.child.pid} at ${server.baseUrl}`)
    const users = await register(server.baseUrl, settings.users)
    const leadSeconds = settings.leadSeconds ?? await leadFor(server.baseUrl, users, settings.reminders)
    const runs: CaseRun[] = []
    const pids = () => target.pids(server!.child.pid!)
    for (const name of settings.cases) runs.push(await runCase(server.baseUrl, pids, users, name, settings, leadSeconds))
    await stopServer(server)
    const lateness = await target.read(users, runs)
    return runs.map((run, i) => ({ database: target.label, case: run.name, lateness: lateness[i]!, cpuMs: run.cpuMs, load: run.load }))
  } catch (error) {
    console.error(`server output (last lines):\n${tail(logPath)}`)
    throw error
  } finally {
    if (server) await stopServer(server)
  }
}

const ms = (value: number) => Math.round(Number(value)).toLocaleString('en-US')

function printReport (rows: Row[], settings: Settings, load: { before: number[], after: number[] }): void {
  console.log(`\nReminder lateness: ${settings.reminders.toLocaleString('en-US')} reminders over ${settings.users} users, ` +
    'firedAt - fireAt (reminder_changes.at - fire_at), ms')
  console.log('\n| database | case | fired | missed | p50 | p99 | max | first fired | last fired | CPU | load |')
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const { database, case: name, lateness: l, cpuMs, load } of rows) {
    console.log(`| ${database} | ${name} | ${l.fired} | ${l.missed} | ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.max)} | ${ms(l.firstFired)} | ${ms(l.lastFired)} | ` +
      `${ms(cpuMs)} | ${load.toFixed(1)} |`)
  }
  console.log('\nspread: due evenly across one minute; instant: all due at once. first/last fired: from the case\'s first fireAt.')
  console.log('CPU: ms the server (and its PostgreSQL backends) spent from the first fireAt until done firing.')
  console.log(`load: the machine's 1-minute load average then, on ${cpus().length} cores.`)
  console.log(`Node ${process.version}, load average ${load.before.map((l) => l.toFixed(2)).join(' ')} before, ${load.after.map((l) => l.toFixed(2)).join(' ')} after`)
  for (const row of rows) {
    if (row.lateness.p99 >= 1_000) console.log(`target missed: p99 ${ms(row.lateness.p99)} ms >= 1 s on ${row.database}, ${row.case}`)
  }
}

async function main (): Promise<void> {
  const settings = readSettings(process.env)
  const before = loadavg()
  buildServer()
  const cleanups: Array<() => Promise<void>> = []
  const tmp = await mkdtemp(join(tmpdir(), 'taskbase-bench-reminders-'))
  cleanups.push(() => rm(tmp, { recursive: true, force: true }))
  try {
    const targets = [await embeddedTarget(tmp)]
    if (settings.databaseUrl !== undefined) targets.push(await postgresTarget(settings.databaseUrl, cleanups))
    const rows: Row[] = []
    for (const target of targets) rows.push(...await measure(target, settings, tmp))
    printReport(rows, settings, { before, after: loadavg() })
  } finally {
    for (const step of cleanups.reverse()) {
      try { await step() } catch (error) { console.error('cleanup:', error instanceof Error ? error.message : error) }
    }
  }
}

await main()
