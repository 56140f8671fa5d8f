import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openEmbedded, openPostgres, type Database } from '../../src/db/client.js'
import { statement } from '../../src/db/sql.js'
import { describeError, isDatabaseUnavailable, toProblem } from '../../src/http/errors.js'
import { testDatabases } from '../helpers.js'

/** The error `work` rejects with. */
async function failure (work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work()
  } catch (error) {
    return error
  }
  throw new Error('expected a failure')
}

/**
 * Errors as the drivers really raise them, read by the one error handler: what was the client's
 * fault is a 400, what is the database being away a 503, anything else a 500 whose cause is logged.
 */
describe.each(testDatabases)('reading the errors $name raises', (target) => {
  let database: Database
  let drop: () => Promise<void>
  beforeAll(async () => { ({ database, drop } = await target.open()) })
  afterAll(() => drop())

  it('answers a value the database cannot take with a 400, and a broken statement with a 500', async () => {
    const badTime = await failure(() => database.query(statement('select $1::timestamptz as at'), ['not a time']))
    expect(toProblem(badTime).status).toBe(400)
    const noTable = await failure(() => database.query(statement('select * from no_such_table')))
    expect(toProblem(noTable).status).toBe(500)
    expect(isDatabaseUnavailable(noTable)).toBe(false)
    // The log line keeps what an operator needs: the SQLSTATE and the message.
    const { errors } = describeError(noTable) as { errors: Array<{ code: string, message: string }> }
    expect(errors[0]).toMatchObject({ code: '42P01', message: expect.stringContaining('no_such_table') })
  })
})

describe('reading a database that is away', () => {
  it('answers 503 when the server refuses the connection', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number }
        server.close(() => resolve(port))
      })
    })
    const database = await openPostgres({ url: `postgres://nobody@127.0.0.1:${port}/none`, poolSize: 1, preparedStatements: true })
    try {
      const refused = await failure(() => database.query(statement('select 1 as one')))
      expect(isDatabaseUnavailable(refused)).toBe(true)
      expect(toProblem(refused)).toMatchObject({ status: 503, headers: { 'retry-after': expect.any(String) } })
    } finally {
      await database.close()
    }
  })

  it('answers 503 once the embedded database has closed', async () => {
    const database = await openEmbedded(undefined)
    await database.close()
    const closed = await failure(() => database.query(statement('select 1 as one')))
    expect(toProblem(closed).status).toBe(503)
  })

  it('stops on a cause chain that loops', () => {
    const a = new Error('a') as Error & { cause?: unknown }
    const b = new Error('b') as Error & { cause?: unknown }
    a.cause = b
    b.cause = a
    expect(isDatabaseUnavailable(a)).toBe(false)
    expect(toProblem(a).status).toBe(500)
    expect((describeError(a).errors as unknown[]).length).toBe(5)
  })
})
