/**
 * What completing a recurring task costs against completing a plain one: the median time of
 * `PATCH /api/v1/tasks/{id} {completed: true}` through the whole app (in-process, app.inject), one
 * run, each completion on a task of its own, the two kinds interleaved.
 *
 *   npx tsx bench/recurrence.ts                      # the embedded database (PGlite)
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/recurrence.ts
 *
 * With BENCH_DATABASE_URL (loopback only), a throwaway database is created on that server and dropped.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { openEmbedded, openPostgres, type Database } from '../src/db/client.js'

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 300)
const WARMUP = 30
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

async function admin (url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try { await client.query(statement) } finally { await client.end() }
}

/** The database to measure on, and how to throw it away. */
async function open (): Promise<{ database: Database, name: string, drop: () => Promise<void> }> {
  const raw = process.env.BENCH_DATABASE_URL
  if (!raw) {
    const database = await openEmbedded(undefined)
    return { database, name: 'PGlite (embedded, in memory)', drop: () => database.close() }
  }
  const url = new URL(raw)
  if (!LOOPBACK.has(url.hostname)) throw new Error('BENCH_DATABASE_URL must point at 127.0.0.1, localhost or [::1]: a database is created and dropped there')
  const name = `taskbase_bench_recurrence_${randomBytes(4).toString('hex')}`
  await admin(raw, `create database ${name}`)
  url.pathname = `/${name}`
  const database = await openPostgres({ url: url.toString(), poolSize: 10 })
  return {
    database,
    name: 'PostgreSQL (BENCH_DATABASE_URL)',
    drop: async () => {
      await database.close()
      await admin(raw, `drop database if exists ${name} with (force)`)
    },
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const { database, name, drop } = await open()
try {
  await database.migrate()
  const keys = { secret: randomBytes(32), issuer: 'bench', audience: 'bench', accessTokenTtlSeconds: 3600, refreshTokenTtlDays: 1 }
  const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent', RATE_LIMIT_API_PER_MINUTE: '0', RATE_LIMIT_AUTH_PER_MINUTE: '0' }), { database, keys })
  const session = (await app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email: 'bench@example.com', password: 'correct horse battery' } })).json()
  const headers = { authorization: `Bearer ${session.accessToken}` }
  const year = new Date().getUTCFullYear() + 1
  const create = async (recurring: boolean): Promise<string> => {
    const payload = { title: 'Water the plants', dueAt: `${year}-03-28T09:00:00+01:00`, ...(recurring && { recurrence: { rule: 'FREQ=DAILY', timezone: 'Europe/Berlin' } }) }
    const res = await app.inject({ method: 'POST', url: '/api/v1/tasks', headers, payload })
    if (res.statusCode !== 201) throw new Error(`create: ${res.statusCode} ${res.body}`)
    return res.json().id
  }
  const total = WARMUP + SAMPLES
  const plain: string[] = []
  const recurring: string[] = []
  for (let i = 0; i < total; i++) {
    plain.push(await create(false))
    recurring.push(await create(true))
  }
  const times: Record<'plain' | 'recurring', number[]> = { plain: [], recurring: [] }
  const complete = async (kind: 'plain' | 'recurring', id: string, keep: boolean) => {
    const started = performance.now()
    const res = await app.inject({ method: 'PATCH', url: `/api/v1/tasks/${id}`, headers, payload: { completed: true } })
    const ms = performance.now() - started
    if (res.statusCode !== 200) throw new Error(`complete: ${res.statusCode} ${res.body}`)
    if (keep) times[kind].push(ms)
  }
  for (let i = 0; i < total; i++) {
    // Interleaved, alternating which goes first: both kinds see the same machine, warm or not.
    const order = i % 2 === 0 ? (['plain', 'recurring'] as const) : (['recurring', 'plain'] as const)
    for (const kind of order) await complete(kind, kind === 'plain' ? plain[i]! : recurring[i]!, i >= WARMUP)
  }
  await app.close()
  const [p, r] = [median(times.plain), median(times.recurring)]
  console.log(`${name}: PATCH {completed: true}, median of ${SAMPLES} each, one run`)
  console.log(`  plain task:     ${p.toFixed(2)} ms`)
  console.log(`  recurring task: ${r.toFixed(2)} ms (${(r / p).toFixed(2)}x)`)
} finally {
  await drop()
}
