import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openEmbedded, type Database } from '../../src/db/client.js'
import { statement } from '../../src/db/sql.js'
import type { Vacuumed } from '../../src/db/embedded.js'
import { VACUUM_POLICY, vacuumDue } from '../../src/db/vacuum.js'

describe('when the embedded database vacuums itself', () => {
  it("follows autovacuum's rule: a base number of changed rows plus a share of the rows counted", () => {
    const policy = { ...VACUUM_POLICY, rows: 2_000, share: 0.2 }
    expect(vacuumDue(policy, 1_999, 0)).toBe(false)
    expect(vacuumDue(policy, 2_000, 0)).toBe(true)
    expect(vacuumDue(policy, 20_000, 100_000)).toBe(false)
    expect(vacuumDue(policy, 22_000, 100_000)).toBe(true)
  })
})

describe('the embedded database', () => {
  let database: Database
  const runs: Vacuumed[] = []
  let waiting: (() => void) | undefined
  const nextRun = () => new Promise<void>((resolve) => { waiting = resolve })
  const one = async <R>(text: string) => (await database.query<R>(statement(text)))[0]!

  beforeAll(async () => {
    database = await openEmbedded(undefined, {
      vacuum: { rows: 500, share: 0, intervalMs: 0, idleWaitMs: 1_000 },
      vacuumed: (run) => { runs.push(run); waiting?.() },
    })
    await database.query(statement('create table churn (id int primary key, n int not null)'))
  }, 60_000)
  afterAll(async () => { await database?.close() })

  it('vacuums and analyzes by itself once enough rows changed, and counts them', async () => {
    // PGlite never runs autovacuum: without our run, reltuples stays -1 (never counted).
    expect(await one<{ reltuples: number }>("select reltuples from pg_class where relname = 'churn'")).toEqual({ reltuples: -1 })
    const ran = nextRun()
    await database.query(statement('insert into churn select i, 0 from generate_series(1, 1000) as i'))
    await ran
    expect(runs).toEqual([{ ms: expect.any(Number), changed: 1000, rows: expect.any(Number) }])
    expect(await one("select reltuples from pg_class where relname = 'churn'")).toEqual({ reltuples: 1000 })
  }, 30_000)

  it('adds up changes across statements, and reclaims the space of deleted rows', async () => {
    const before = runs.length
    const ran = nextRun()
    await database.query(statement('update churn set n = n + 1 where id <= 300'))
    await database.query(statement('delete from churn'))
    await ran
    expect(runs.length).toBe(before + 1)
    expect(runs.at(-1)!.changed).toBe(1300)
    // Every row dead and vacuumed: the table's pages are given back.
    expect(await one("select pg_relation_size('churn')::int as size")).toEqual({ size: 0 })
  }, 30_000)
})
