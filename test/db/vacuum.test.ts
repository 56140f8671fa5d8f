import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openEmbedded, type Database } from '../../src/db/client.js'
import { statement } from '../../src/db/sql.js'
import type { Vacuumed } from '../../src/db/embedded.js'
import { VACUUM_POLICY, vacuumDue, vacuumSteps, type VacuumPolicy } from '../../src/db/vacuum.js'

describe('when the embedded database vacuums itself', () => {
  it("follows autovacuum's rule: a base number of changed rows plus a share of the rows counted", () => {
    const policy = { ...VACUUM_POLICY, rows: 2_000, share: 0.2 }
    expect(vacuumDue(policy, 1_999, 0)).toBe(false)
    expect(vacuumDue(policy, 2_000, 0)).toBe(true)
    expect(vacuumDue(policy, 20_000, 100_000)).toBe(false)
    expect(vacuumDue(policy, 22_000, 100_000)).toBe(true)
  })

  it('takes each table in its own steps, and cleans the indexes only when asked', () => {
    expect(vacuumSteps(['tasks', 'users'], ['tasks_title_trgm_idx'], false)).toStrictEqual([
      "select gin_clean_pending_list('tasks_title_trgm_idx'::regclass)",
      'VACUUM (INDEX_CLEANUP OFF) tasks', 'ANALYZE tasks',
      'VACUUM (INDEX_CLEANUP OFF) users', 'ANALYZE users',
    ])
    expect(vacuumSteps(['tasks', 'users'], ['tasks_title_trgm_idx'], true)).toStrictEqual([
      'VACUUM tasks', 'ANALYZE tasks', 'VACUUM users', 'ANALYZE users', 'VACUUM',
    ])
  })
})

/** An embedded database that vacuums by `policy`, and what its passes said, as they come. */
function vacuuming (policy: VacuumPolicy) {
  const runs: Array<Vacuumed & { at: number }> = []
  const waiting: Array<{ matches: (run: Vacuumed) => boolean, resolve: (run: Vacuumed & { at: number }) => void }> = []
  const state = {
    database: undefined as unknown as Database,
    runs,
    /** The next pass from now that `matches`. */
    next: (matches: (run: Vacuumed) => boolean = () => true) =>
      new Promise<Vacuumed & { at: number }>((resolve) => { waiting.push({ matches, resolve }) }),
    one: async <R>(text: string) => (await state.database.query<R>(statement(text)))[0]!,
  }
  beforeAll(async () => {
    state.database = await openEmbedded(undefined, {
      vacuum: policy,
      vacuumed: (run) => {
        const seen = { ...run, at: performance.now() }
        runs.push(seen)
        for (const w of waiting.splice(0)) {
          if (w.matches(run)) w.resolve(seen)
          else waiting.push(w)
        }
      },
    })
    // The server's tables, each of them a step or two of every pass, and one of the test's own.
    await state.database.migrate()
    await state.database.query(statement('create table churn (id int primary key, n int not null)'))
  }, 60_000)
  afterAll(async () => { await state.database?.close() })
  return state
}

describe('the embedded database', () => {
  // Quiet after 2 s without a request: a pass 1 s after its changes leaves the indexes to a later one.
  const db = vacuuming({ rows: 500, share: 0, intervalMs: 0, quietMs: 2_000, indexWaitMs: 3_600_000 })

  it('vacuums and analyzes by itself once enough rows changed, and counts them', async () => {
    // PGlite never runs autovacuum: without our pass, reltuples stays -1 (never counted).
    expect(await db.one<{ reltuples: number }>("select reltuples from pg_class where relname = 'churn'")).toEqual({ reltuples: -1 })
    const ran = db.next()
    await db.database.query(statement('insert into churn select i, 0 from generate_series(1, 1000) as i'))
    expect(await ran).toMatchObject({ changed: 1000, rows: expect.any(Number), steps: expect.any(Number), indexes: false })
    expect(await db.one("select reltuples from pg_class where relname = 'churn'")).toEqual({ reltuples: 1000 })
  }, 30_000)

  it('answers requests between the steps of a pass, leaves the indexes while busy, and cleans them once quiet', async () => {
    await db.next((run) => run.indexes) // what the insert above left
    // Back-to-back reads, each answer timed: the server is never quiet while they run.
    const answered: number[] = []
    let reading = true
    const reads = (async () => {
      while (reading) {
        await db.one('select count(*) from churn')
        answered.push(performance.now())
      }
    })()
    const busyPass = db.next()
    await db.database.query(statement('update churn set n = n + 1 where id <= 300'))
    await db.database.query(statement('delete from churn'))
    const busy = await busyPass
    const quietPass = db.next()
    reading = false
    await reads
    expect(busy).toMatchObject({ changed: 1300, indexes: false })
    expect(busy.steps).toBeGreaterThan(20)
    // One VACUUM of the whole database would have answered nothing while it ran.
    expect(answered.filter((at) => at > busy.at - busy.ms && at < busy.at).length).toBeGreaterThanOrEqual(3)
    // Dead rows stay as line pointers the primary key's index still points at, until it is cleaned.
    expect(await db.one("select pg_relation_size('churn')::int > 0 as kept")).toEqual({ kept: true })
    expect(await quietPass).toMatchObject({ changed: 0, indexes: true })
    // Every row dead and vacuumed with the index: the table's pages are given back.
    expect(await db.one("select pg_relation_size('churn')::int as size")).toEqual({ size: 0 })
  }, 30_000)
})

describe('an embedded database that is never quiet', () => {
  const db = vacuuming({ rows: 500, share: 0, intervalMs: 0, quietMs: 3_600_000, indexWaitMs: 0 })

  it('cleans the indexes anyway, once they have waited indexWaitMs', async () => {
    const cleaned = db.next((run) => run.indexes)
    await db.database.query(statement('insert into churn select i, 0 from generate_series(1, 1000) as i'))
    await db.database.query(statement('delete from churn'))
    expect(db.runs.some((run) => run.indexes)).toBe(false)
    await cleaned
    expect(db.runs[0]).toMatchObject({ indexes: false })
    expect(await db.one("select pg_relation_size('churn')::int as size")).toEqual({ size: 0 })
  }, 30_000)
})
