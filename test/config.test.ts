import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'

describe('loadConfig', () => {
  it('runs with no variables at all: port 3000 on 127.0.0.1, embedded database in ./data', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({ port: 3000, host: '127.0.0.1', databaseUrl: undefined, bodyLimitBytes: 65_536 })
    expect(config.dataDir).toMatch(/\/data$/)
  })

  it('lists every problem at once, with the fix, and never echoes a secret', () => {
    const secret = 'short-secret'
    let error: unknown
    try {
      loadConfig({ PORT: 'eighty', JWT_SECRET: secret, LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://u:hunter2@h/db' })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    const message = (error as Error).message
    expect(message).toContain('PORT must be a whole number')
    expect(message).toContain('JWT_SECRET must be at least 32 bytes')
    expect(message).toContain('openssl rand')
    expect(message).toContain('LOG_LEVEL')
    expect(message).toContain('DATABASE_URL must start with postgres://')
    expect(message).not.toContain(secret)
    expect(message).not.toContain('hunter2')
  })

  it('sends event-stream heartbeats every EVENT_HEARTBEAT_SECONDS, 15 by default, 1 to 300', () => {
    expect(loadConfig({}).eventHeartbeatMs).toBe(15_000)
    expect(loadConfig({ EVENT_HEARTBEAT_SECONDS: '5' }).eventHeartbeatMs).toBe(5_000)
    for (const bad of ['0', '301', '1.5', 'often']) expect(() => loadConfig({ EVENT_HEARTBEAT_SECONDS: bad }), bad).toThrow(/EVENT_HEARTBEAT_SECONDS/)
  })

  it('needs no JWT_SECRET with DATABASE_URL: the secret is then kept in the database', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://localhost/taskbase' }).jwtSecret).toBeUndefined()
    expect(loadConfig({ DATABASE_URL: 'postgres://localhost/taskbase', JWT_SECRET: 'x'.repeat(32) }).jwtSecret).toBe('x'.repeat(32))
  })

  it('refuses an AUTH_SHARED_SECRET equal to JWT_SECRET, without echoing either', () => {
    const secret = 'the same secret for both, 32 bytes or more'
    expect(() => loadConfig({ JWT_SECRET: secret, AUTH_SHARED_SECRET: secret })).toThrow(/AUTH_SHARED_SECRET must differ from JWT_SECRET/)
    try { loadConfig({ JWT_SECRET: secret, AUTH_SHARED_SECRET: secret }) } catch (error) { expect((error as Error).message).not.toContain(secret) }
  })

  it('takes AUTH_SUBJECT_CLAIM as a claim name or a dotted path', () => {
    expect(loadConfig({}).externalAuth.subjectClaim).toBe('sub')
    expect(loadConfig({ AUTH_SUBJECT_CLAIM: 'user.id' }).externalAuth.subjectClaim).toBe('user.id')
    expect(() => loadConfig({ AUTH_SUBJECT_CLAIM: 'user..id' })).toThrow(/AUTH_SUBJECT_CLAIM/)
  })

  it('runs one process by default, one per core with WORKERS=auto, and several only on a server database', () => {
    const server = { DATABASE_URL: 'postgres://localhost/taskbase', JWT_SECRET: 'x'.repeat(32) }
    expect(loadConfig(server).workers).toBe(1)
    expect(loadConfig({ ...server, WORKERS: '3' }).workers).toBe(3)
    expect(loadConfig({ ...server, WORKERS: 'auto' }).workers).toBeGreaterThanOrEqual(1)
    expect(() => loadConfig({ WORKERS: '2' })).toThrow(/WORKERS above 1 needs DATABASE_URL/)
    expect(() => loadConfig({ ...server, WORKERS: 'two' })).toThrow(/WORKERS must be a whole number/)
  })

  it('takes DATABASE_PREPARED_STATEMENTS as auto, true or false', () => {
    expect(loadConfig({}).databasePreparedStatements).toBe('auto')
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' }).databasePreparedStatements).toBe(false)
    expect(() => loadConfig({ DATABASE_PREPARED_STATEMENTS: 'yes' })).toThrow(/DATABASE_PREPARED_STATEMENTS/)
  })
})
