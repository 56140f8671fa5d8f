import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { openPostgres, type Database } from '../../src/db/client.js'
import { isReadOnly, READ_APPLICATION_NAME } from '../../src/db/postgres.js'
import { statement } from '../../src/db/sql.js'
import { testDatabases } from '../helpers.js'

/**
 * What every statement relies on from the database, on both drivers: rows named by the SQL's
 * columns and parsed by their types, the same on every connection and every execution (on
 * PostgreSQL a statement's result is described once per process, then only bound and executed),
 * and a failed statement that rejects and leaves the connection usable.
 */
describe.each(testDatabases)('statements on $name', (target) => {
  let database: Database
  let url: string | undefined
  let drop: () => Promise<void>
  beforeAll(async () => { ({ database, drop, url } = await target.open()) })
  afterAll(() => drop())

  const TYPED = statement(`select $1::text as title, $2::timestamptz as "dueAt", $3::bigint as seq, $4::int as version,
    $5::boolean as completed, $6::text[] as tags, $7::jsonb as recurrence, $8::uuid as "projectId"`)

  it('names each column as the SQL does and parses it by its type, null included', async () => {
    const values = ['Buy milk', '2026-12-31T10:00:00.000Z', 9_007_199_254_740, 3, true, ['work', 'a "quoted", tag'], JSON.stringify({ every: 'day' }), '8a1d3c2e-5b7f-4d6a-9c0e-1f2a3b4c5d6e']
    const [row] = await database.query(TYPED, values)
    expect(row).toStrictEqual({
      title: 'Buy milk', dueAt: '2026-12-31T10:00:00.000Z', seq: 9_007_199_254_740, version: 3, completed: true,
      tags: ['work', 'a "quoted", tag'], recurrence: { every: 'day' }, projectId: '8a1d3c2e-5b7f-4d6a-9c0e-1f2a3b4c5d6e',
    })
    const [empty] = await database.query(TYPED, [null, null, null, null, null, null, null, null])
    expect(empty).toStrictEqual({ title: null, dueAt: null, seq: null, version: null, completed: null, tags: null, recurrence: null, projectId: null })
  })

  it('gives the same rows on every connection and execution, many at once', async () => {
    const SERIES = statement('select n, n::text || \'th\' as label, now() >= now() as sane from generate_series(1, $1::int) as n')
    const counts = Array.from({ length: 40 }, (_, i) => i % 7)
    const results = await Promise.all(counts.map((count) => database.query(SERIES, [count])))
    results.forEach((rows, i) => {
      expect(rows).toStrictEqual(Array.from({ length: counts[i]! }, (_, k) => ({ n: k + 1, label: `${k + 1}th`, sane: true })))
    })
  })

  it('answers a statement that returned no row, then rows; and one with no columns, again and again', async () => {
    await database.query(statement('create table if not exists query_test_notes (id int primary key, body text)'))
    const INSERT = statement('insert into query_test_notes (id, body) values ($1, $2)')
    const FIND = statement('select id, body from query_test_notes where id = $1')
    expect(await database.query(FIND, [1])).toStrictEqual([])
    for (const id of [1, 2, 3]) expect(await database.query(INSERT, [id, `note ${id}`])).toStrictEqual([])
    expect(await database.query(FIND, [2])).toStrictEqual([{ id: 2, body: 'note 2' }])
    await database.transaction(async (tx) => {
      expect(await tx.query(INSERT, [4, 'note 4'])).toStrictEqual([])
      expect(await tx.query(FIND, [4])).toStrictEqual([{ id: 4, body: 'note 4' }])
    })
  })

  it('keeps the last of two columns of one name, as an object literal does', async () => {
    expect(await database.query(statement('select 1 as a, 2 as a, 3 as b'))).toStrictEqual([{ a: 2, b: 3 }])
  })

  it('gives back text of any script and length as it was stored, and a failure with its fields', async () => {
    await database.query(statement('create table if not exists query_test_texts (id int primary key, body text)'))
    // Long enough to reach the server's reader in several pieces, cut anywhere in a character.
    const long = 'Grüße, 日本語, 🎉 and "quotes"\\\n'.repeat(8_000)
    await database.query(statement('insert into query_test_texts (id, body) values (1, $1), (2, $2)'), [long, 'ß'])
    expect(await database.query(statement('select id, body, octet_length(body) as bytes from query_test_texts order by id')))
      .toStrictEqual([{ id: 1, body: long, bytes: Buffer.byteLength(long) }, { id: 2, body: 'ß', bytes: 2 }])
    await expect(database.query(statement('insert into query_test_texts (id, body) values (1, $1)'), ['again'])).rejects.toMatchObject({
      code: '23505', severity: 'ERROR', table: 'query_test_texts', constraint: 'query_test_texts_pkey', detail: 'Key (id)=(1) already exists.',
      message: 'duplicate key value violates unique constraint "query_test_texts_pkey"',
    })
  })

  it('tells a listener what a statement notified, once, outside a transaction and in one', async () => {
    const heard: string[] = []
    let wake: () => void = () => {}
    const stop = await database.listen('query_test_channel', {
      message: (payload) => { heard.push(payload); wake() },
      lost: () => {},
      restored: () => {},
    })
    try {
      const both = new Promise<void>((resolve) => { wake = () => { if (heard.length >= 2) resolve() } })
      await database.query(statement("select pg_notify('query_test_channel', $1)"), ['alone'])
      await database.transaction((tx) => tx.query(statement("select pg_notify('query_test_channel', $1)"), ['in a transaction']))
      await both
      // A third, to know nothing more of the first two is on its way.
      const third = new Promise<void>((resolve) => { wake = () => { if (heard.length >= 3) resolve() } })
      await database.query(statement("select pg_notify('query_test_channel', $1)"), ['last'])
      await third
      expect(heard).toStrictEqual(['alone', 'in a transaction', 'last'])
    } finally {
      await stop()
    }
  })

  it('rejects a value it cannot send or a statement that fails, and answers the next one', async () => {
    const ECHO = statement('select $1::text as echoed')
    if (target.name === 'postgres') {
      // node-postgres turns a value into text by its toPostgres(), and refuses one that returns itself.
      const cyclic: { toPostgres: () => unknown } = { toPostgres: () => cyclic }
      await expect(database.query(ECHO, [cyclic])).rejects.toThrow(/circular/)
      // Refused before it ran: the transaction goes on, and the statement prepared with it works.
      const FRESH = statement('select $1::text as fresh')
      expect(await database.transaction(async (tx) => {
        await expect(tx.query(FRESH, [cyclic])).rejects.toThrow(/circular/)
        return tx.query(FRESH, ['prepared'])
      })).toStrictEqual([{ fresh: 'prepared' }])
    }
    await expect(database.query(statement('select 1 / $1::int as quotient'), [0])).rejects.toMatchObject({ code: '22012' })
    expect(await database.query(ECHO, ['still here'])).toStrictEqual([{ echoed: 'still here' }])
    await expect(database.transaction(async (tx) => {
      expect(await tx.query(ECHO, ['in a transaction'])).toStrictEqual([{ echoed: 'in a transaction' }])
      await tx.query(statement('select 1 / $1::int as quotient'), [0])
    })).rejects.toMatchObject({ code: '22012' })
    expect(await database.query(ECHO, ['after it'])).toStrictEqual([{ echoed: 'after it' }])
  })

  // Another process may change a table (a newer version's migration); PGlite's database is this process's own.
  it.runIf(target.name === 'postgres')('never answers rows of the old columns once a table changed under a running server', async () => {
    // Its own pool of one connection, so each connection it replaces is a new one that has not
    // prepared the statement: the description kept from the first is all it has.
    const own = await openPostgres({ url: url!, poolSize: 1 })
    try {
      await own.query(statement('create table query_test_changing (id int primary key)'))
      await own.query(statement('insert into query_test_changing (id) values (1)'))
      const ALL = statement('select * from query_test_changing')
      expect(await own.query(ALL)).toStrictEqual([{ id: 1 }])
      await own.query(statement('alter table query_test_changing add column label text default \'one\''))
      const answers: unknown[] = []
      for (let attempt = 0; attempt < 4; attempt++) {
        answers.push(await own.query(ALL).catch((error: Error) => error))
        if (Array.isArray(answers.at(-1))) break
      }
      // Each answer is an error (PostgreSQL's "cached plan must not change result type", or ours
      // for a connection that had not prepared it) or the rows as they now are.
      for (const answer of answers) if (Array.isArray(answer)) expect(answer).toStrictEqual([{ id: 1, label: 'one' }])
      expect(answers.at(-1)).toStrictEqual([{ id: 1, label: 'one' }])
    } finally {
      await own.close()
    }
  })

  describe.runIf(target.name === 'postgres')('read connections', () => {
    const PID = statement('select pg_backend_pid() as pid')
    /** Whether PostgreSQL still has a read connection with process `pid`. */
    const readBackend = async (pid: number) => {
      const admin = new pg.Client({ connectionString: url })
      await admin.connect()
      try {
        return (await admin.query('select 1 from pg_stat_activity where pid = $1 and application_name = $2', [pid, READ_APPLICATION_NAME])).rowCount === 1
      } finally {
        await admin.end()
      }
    }
    /** Asks `check` again until it holds, for at most 5 s. */
    const eventually = async (check: () => Promise<boolean>) => {
      const deadline = Date.now() + 5_000
      while (!await check()) {
        if (Date.now() > deadline) throw new Error('still not so after 5 s')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }

    it('tells reads from statements that write, lock or set', () => {
      expect(isReadOnly(statement('select id from tasks t where t.user_id = $1'))).toBe(true)
      expect(isReadOnly(statement('  SELECT count(*) from tasks'))).toBe(true)
      for (const text of ['update tasks set title = $1', 'with x as (delete from tasks returning id) select * from x',
        'select id from tasks for update', 'select id from tasks for no key update', 'select id from tasks for key share',
        'select set_config(\'a.b\', \'c\', false)', 'select pg_advisory_lock(1)', 'select nextval(\'s\')', 'insert into t values (1)']) {
        expect(isReadOnly(statement(text)), text).toBe(false)
      }
    })

    it('sends reads sent together down a few connections, each read answered alone, a failure included', async () => {
      const own = await openPostgres({ url: url!, poolSize: 2, readConnections: 2 })
      try {
        const ECHO = statement('select $1::int as n, pg_backend_pid() as pid')
        const QUOTIENT = statement('select 10 / $1::int as quotient')
        const reads = Array.from({ length: 30 }, (_, i) => i === 13
          ? own.query(QUOTIENT, [0]).catch((error: { code?: string }) => error.code)
          : own.query<{ n: number, pid: number }>(ECHO, [i]))
        const answers = await Promise.all(reads)
        expect(answers[13]).toBe('22012')
        const rows = answers.filter((answer, i) => i !== 13) as Array<Array<{ n: number, pid: number }>>
        expect(rows.map((r) => r[0]!.n)).toStrictEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => i !== 13))
        // Two read connections carried them all, and the pool none.
        const pids = [...new Set(rows.map((r) => r[0]!.pid))]
        expect(pids.length).toBeLessThanOrEqual(2)
        for (const pid of pids) expect(await readBackend(pid)).toBe(true)
        expect(own.poolStats!()).toMatchObject({ open: 0, readConnections: 2, readsPending: 0 })
        await own.close()
        for (const pid of pids) await eventually(async () => !await readBackend(pid))
        // Closed, as the pool is once ended: nothing opens again behind the caller's back.
        await expect(own.query(ECHO, [1])).rejects.toThrow(/closed/)
      } finally {
        await own.close()
      }
    })

    it('fails the reads on a connection that is lost, and reads again on another', async () => {
      const own = await openPostgres({ url: url!, poolSize: 1, readConnections: 1 })
      try {
        const [{ pid }] = await own.query<{ pid: number }>(PID) as [{ pid: number }]
        const SLOW = statement('select pg_sleep($1::float) is null as slept')
        const inFlight = [own.query(SLOW, [30]), own.query(SLOW, [0])].map((p) => p.then(() => 'answered', () => 'failed'))
        expect(own.poolStats!().readsPending).toBe(2)
        const admin = new pg.Client({ connectionString: url })
        await admin.connect()
        await admin.query('select pg_terminate_backend($1)', [pid])
        await admin.end()
        expect(await Promise.all(inFlight)).toStrictEqual(['failed', 'failed'])
        const [again] = await own.query<{ pid: number }>(PID)
        expect(again!.pid).not.toBe(pid)
      } finally {
        await own.close()
      }
    })

    it('closes a read connection left unused, and opens one again for the next read', async () => {
      const own = await openPostgres({ url: url!, poolSize: 1, readConnections: 1, readIdleMs: 100 })
      try {
        const [{ pid }] = await own.query<{ pid: number }>(PID) as [{ pid: number }]
        // Read in the same turn as the answer: no timer, the idle sweep included, runs before it.
        // (Asking the server whether the backend lives took longer than 100 ms on a loaded machine.)
        expect(own.poolStats!().readConnections).toBe(1)
        await eventually(async () => !await readBackend(pid) && own.poolStats!().readConnections === 0)
        const [again] = await own.query<{ pid: number }>(PID)
        expect(again!.pid).not.toBe(pid)
      } finally {
        await own.close()
      }
    })
  })
})
