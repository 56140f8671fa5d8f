import { describe, expect, it } from 'vitest'
import { describeError, isDatabaseUnavailable, toProblem } from '../../src/http/errors.js'

describe('reading an error and its causes', () => {
  const driverError = (code: string) => Object.assign(new Error('driver'), { code, severity: 'ERROR' })
  const drizzleError = (cause: Error) => Object.assign(new Error('Failed query: select $1\nparams: secret-hash'), { query: 'select $1', cause })

  it('finds the SQLSTATE under drizzle\'s wrapper: a lost connection is a 503, bad data a 400', () => {
    expect(isDatabaseUnavailable(drizzleError(driverError('08006')))).toBe(true)
    expect(toProblem(drizzleError(driverError('08006'))).status).toBe(503)
    expect(toProblem(drizzleError(driverError('22007'))).status).toBe(400)
    expect(toProblem(drizzleError(driverError('42P01'))).status).toBe(500)
  })

  it('logs the query text but never its parameters', () => {
    const { errors } = describeError(drizzleError(driverError('23505'))) as { errors: Array<{ message: string }> }
    expect(errors.map((e) => e.message)).toEqual(['Failed query: select $1', 'driver'])
    expect(JSON.stringify(errors)).not.toContain('secret-hash')
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
