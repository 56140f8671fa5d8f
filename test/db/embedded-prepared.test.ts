import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../src/db/client.js'
import { openEmbedded } from '../../src/db/embedded.js'
import { statement } from '../../src/db/sql.js'
import { pgliteTemplate } from '../helpers.js'

/**
 * The embedded database runs each statement text as a named prepared statement: parsed and planned
 * at its first run only, a bounded number kept, and errors leaving the session as PGlite's own
 * unnamed statements leave it.
 */
describe('prepared statements on the embedded database', () => {
  let database: Database
  beforeAll(async () => { database = await openEmbedded(undefined, { template: await pgliteTemplate(), maxPrepared: 4 }) })
  afterAll(() => database.close())

  const prepared = async () => (await database.query<{ statement: string }>(statement(
    'select statement from pg_prepared_statements'))).map((row) => row.statement)
  const echo = statement('select $1::int + 1 as next, $2::text[] as tags, $3::jsonb as doc, $4::boolean as flag')

  it('prepares a statement once and runs it with each set of values, typed as PostgreSQL typed them', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await database.query(echo, [i, ['a', 'b,c'], JSON.stringify({ i }), i % 2 === 0]))
        .toEqual([{ next: i + 1, tags: ['a', 'b,c'], doc: { i }, flag: i % 2 === 0 }])
    }
    expect(await database.query(echo, [null, null, null, null])).toEqual([{ next: null, tags: null, doc: null, flag: null }])
    expect((await prepared()).filter((text) => text === echo.text)).toHaveLength(1)
  })

  it('keeps at most maxPrepared, closing the least recently run, and prepares a closed one again', async () => {
    const texts = [1, 2, 3, 4, 5, 6].map((n) => statement(`select ${n} as n`))
    for (const s of texts) expect(await database.query(s)).toEqual([{ n: Number(s.text.split(' ')[1]) }])
    const held = await prepared()
    expect(held).toHaveLength(4) // the last three, and the query asking
    // Which, not in what order: statements prepared within one tick of PGlite's clock share a prepare_time.
    expect(held).toEqual(expect.arrayContaining([texts[3]!.text, texts[4]!.text, texts[5]!.text, expect.stringContaining('pg_prepared_statements')]))
    expect(await database.query(texts[0]!)).toEqual([{ n: 1 }])
  })

  it('answers an error with its code and goes on: a bad statement, a failed one, one inside a rolled-back transaction', async () => {
    await expect(database.query(statement('selec 1'))).rejects.toMatchObject({ code: '42601' })
    await expect(database.query(statement('select 1 / $1::int as q'), [0])).rejects.toMatchObject({ code: '22012' })
    expect(await database.query(statement('select 1 / $1::int as q'), [1])).toEqual([{ q: 1 }])
    await database.query(statement('create temporary table kept (id int primary key)'))
    const insert = statement('insert into kept (id) values ($1) returning id')
    await expect(database.transaction(async (tx) => {
      await tx.query(insert, [1])
      await tx.query(insert, [1])
    })).rejects.toMatchObject({ code: '23505' })
    expect(await database.query(statement('select count(*)::int as n from kept'))).toEqual([{ n: 0 }])
    expect(await database.query(insert, [1])).toEqual([{ id: 1 }])
  })
})
