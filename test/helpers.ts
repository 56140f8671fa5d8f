import { randomBytes, randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { inject } from 'vitest'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import { buildApp } from '../src/app.js'
import type { TokenKeys } from '../src/auth/tokens.js'
import { loadConfig } from '../src/config.js'
import { openEmbedded, openPostgres, type Database } from '../src/db/client.js'

export interface TestDatabase {
  name: 'pglite' | 'postgres'
  /** A new, empty, migrated database, and how to throw it away. */
  open (): Promise<{ database: Database, drop: () => Promise<void>, url?: string }>
}

/** The run's migrated PGlite (global-setup.ts), read once per file; none outside vitest's runs. */
let template: Promise<Uint8Array | undefined> | undefined
export const pgliteTemplate = () => template ??= (async () => {
  const file = inject('pgliteTemplate')
  return file ? new Uint8Array(await readFile(file)) : undefined
})()

const pglite: TestDatabase = {
  name: 'pglite',
  async open () {
    // In memory, a copy of the migrated template: migrate finds nothing to do.
    const database = await openEmbedded(undefined, { template: await pgliteTemplate() })
    await database.migrate()
    return { database, drop: () => database.close() }
  },
}

/** Creates a database on the server of `adminUrl`; `drop` removes it, closing its connections. */
export async function throwawayDatabase (adminUrl: string, prefix = 'taskbase_test'): Promise<{ name: string, url: string, drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: adminUrl })
    await client.connect()
    try { await client.query(statement) } finally { await client.end() }
  }
  await admin(`create database ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return { name, url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) }
}

/** A throwaway database on the server of TEST_DATABASE_URL, dropped after the file's tests. */
function postgres (adminUrl: string): TestDatabase {
  return {
    name: 'postgres',
    async open () {
      const created = await throwawayDatabase(adminUrl)
      const database = await openPostgres({ url: created.url, poolSize: 10 })
      await database.migrate()
      return {
        database,
        url: created.url,
        drop: async () => {
          await database.close()
          await created.drop()
        },
      }
    },
  }
}

/** PGlite always; the real PostgreSQL too when TEST_DATABASE_URL is set (CI sets it). */
export const testDatabases: TestDatabase[] = [
  pglite,
  ...(process.env.TEST_DATABASE_URL ? [postgres(process.env.TEST_DATABASE_URL)] : []),
]

export const testKeys = (overrides: Partial<TokenKeys> = {}): TokenKeys => ({
  secret: new TextEncoder().encode('test secret that is at least 32 bytes long'),
  issuer: 'taskbase-test',
  audience: 'taskbase-test',
  accessTokenTtlSeconds: 900,
  refreshTokenTtlDays: 30,
  ...overrides,
})

export const PASSWORD = 'correct horse battery'

export interface Account {
  id: string
  email: string
  accessToken: string
  refreshToken: string
  headers: { authorization: string }
}

export interface TestApp {
  app: FastifyInstance
  database: Database
  /** The PostgreSQL URL of `database` (postgres target only), for a second app on it. */
  databaseUrl?: string
  keys: TokenKeys
  inject (options: InjectOptions): Promise<LightMyRequestResponse>
  signUp (email?: string, password?: string): Promise<Account>
  /** Creates a task through the API and returns its JSON. */
  createTask (account: Account, payload: Record<string, unknown>): Promise<Record<string, any>>
  close (): Promise<void>
}

let counter = 0
export const uniqueEmail = (prefix = 'user') => `${prefix}-${process.pid}-${Date.now()}-${++counter}@example.com`

export interface TestAppOptions {
  keys?: TokenKeys
  /** An open database to use (not dropped at close); by default a new one of `target`. */
  database?: Database
  /** Receives the app's log lines (level info); logs are off otherwise. */
  logStream?: { write (line: string): void }
  /** Comment lines on idle event streams (15 s by default). */
  eventHeartbeatMs?: number
  /**
   * More environment for loadConfig, e.g. AUTH_JWKS_URL. The rate limits (auth requests, failed
   * logins, API requests) are off unless given here: every test acts from one address, and most
   * tests of wrong passwords would add up past the failed-login limit.
   */
  env?: Record<string, string>
}

export async function buildTestApp (target: TestDatabase, { keys = testKeys(), database: given, logStream, env = {}, eventHeartbeatMs }: TestAppOptions = {}): Promise<TestApp> {
  const opened: { database: Database, drop: () => Promise<void>, url?: string } = given ? { database: given, drop: async () => {} } : await target.open()
  const { database } = opened
  const app = await buildApp(loadConfig({
    LOG_LEVEL: logStream ? 'info' : 'silent', RATE_LIMIT_AUTH_PER_MINUTE: '0', RATE_LIMIT_LOGIN_FAILURES: '0', RATE_LIMIT_API_PER_MINUTE: '0', ...env,
  }), { database, keys, logStream, eventHeartbeatMs })
  const inject = (options: InjectOptions) => app.inject(options)
  return {
    app,
    database,
    databaseUrl: opened.url,
    keys,
    inject,
    async signUp (email = uniqueEmail(), password = PASSWORD) {
      const res = await inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email, password } })
      if (res.statusCode !== 201) throw new Error(`sign-up failed: ${res.statusCode} ${res.body}`)
      const body = res.json()
      return {
        id: body.user.id,
        email,
        accessToken: body.accessToken,
        refreshToken: body.refreshToken,
        headers: { authorization: `Bearer ${body.accessToken}` },
      }
    },
    async createTask (account, payload) {
      const res = await inject({ method: 'POST', url: '/api/v1/tasks', headers: account.headers, payload })
      if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
      return res.json()
    },
    async close () {
      await app.close()
      await opened.drop()
    },
  }
}

/** The session (refresh-token family) an access token of ours belongs to: its `sid` claim. */
export const sessionIdOf = (accessToken: string): string =>
  JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString('utf8')).sid

/** Asserts the common shape of every error answer. */
export function expectProblem (res: { statusCode: number, headers: Record<string, unknown>, json: () => any }, status: number): any {
  if (res.statusCode !== status) throw new Error(`expected ${status}, got ${res.statusCode}: ${JSON.stringify(res.json())}`)
  const contentType = String(res.headers['content-type'])
  if (!contentType.startsWith('application/problem+json')) throw new Error(`expected problem+json, got ${contentType}`)
  const body = res.json()
  if (body.status !== status || typeof body.title !== 'string' || typeof body.detail !== 'string' || typeof body.type !== 'string') {
    throw new Error(`not a problem body: ${JSON.stringify(body)}`)
  }
  return body
}

/**
 * Operations anyone may call: sign-in, health, the reference, metrics (which has its own access
 * rule), the MCP protected-resource document (RFC 9728: it says how to get a token). Everything
 * else in /openapi.json must require a bearer token: a route added later cannot escape the tests
 * that loop over the document.
 */
export const PUBLIC_OPERATIONS = new Set([
  'POST /api/v1/auth/register', 'POST /api/v1/auth/login', 'POST /api/v1/auth/refresh', 'POST /api/v1/auth/logout',
  'GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /.well-known/oauth-protected-resource/mcp',
])

export interface Operation {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** As documented, such as /api/v1/tasks/{id}. */
  path: string
  /** With every path parameter filled in (a random UUID). */
  url: string
  /** The operation object of the document. */
  spec: Record<string, any>
}

/** Every operation /openapi.json documents. */
export async function documentedOperations (app: FastifyInstance): Promise<Operation[]> {
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  const operations: Operation[] = []
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, spec] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue
      const url = path.replace(/\{[^}]+\}/g, () => randomUUID())
      operations.push({ method: method.toUpperCase() as Operation['method'], path, url, spec })
    }
  }
  return operations
}

/** The documented operations that require a bearer token. */
export async function protectedOperations (app: FastifyInstance): Promise<Operation[]> {
  return (await documentedOperations(app)).filter((op) => !PUBLIC_OPERATIONS.has(`${op.method} ${op.path}`))
}
