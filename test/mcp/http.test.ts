import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client as Client110 } from 'mcp-sdk-1.10/client/index.js'
import { StreamableHTTPClientTransport as Transport110 } from 'mcp-sdk-1.10/client/streamableHttp.js'
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PROTOCOL_VERSIONS } from '../../src/mcp/routes.js'
import { buildTestApp, expectProblem, testDatabases, type TestApp } from '../helpers.js'
import { agent, listening, rpc } from './support.js'

/** The versions the issue names; every client of the SDK since 1.10 speaks one of them, or 2024-11-05. */
const VERSIONS = ['2025-03-26', '2025-06-18', '2025-11-25']
const ISSUER = 'https://app.example.com'
const SECRET = 'BETTER_AUTH_SECRET of the front end, 32 bytes+'

const initialize = (protocolVersion: string) => ({
  jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'by-hand', version: '0' } },
})
const call = (id: number, name: string, args: Record<string, unknown>) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } })

const root = fileURLToPath(new URL('../..', import.meta.url))

/** The ```js block of the README's section "Agents (MCP)". */
function readmeExample (): string {
  const section = readFileSync(join(root, 'README.md'), 'utf8').split(/^## /m).find((part) => part.startsWith('Agents (MCP)\n'))
  const block = section?.match(/^```js\n([\s\S]*?)^```$/m)?.[1]
  if (block === undefined) throw new Error('README.md: no ```js block under "## Agents (MCP)"')
  return block
}

/** Runs `node example.mjs` in `cwd` to its end; never rejects, so a failure's output reaches the assertion. */
const runNode = (cwd: string, env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> => new Promise((resolve) => {
  execFile(process.execPath, ['example.mjs'], { cwd, timeout: 30_000, env: { PATH: process.env.PATH ?? '', ...env } },
    (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
})

/** Problem+json over fetch, checked as the REST tests check it. */
const problemOf = (res: { status: number, headers: Headers, json (): any }, status: number) =>
  expectProblem({ statusCode: res.status, headers: Object.fromEntries(res.headers), json: res.json }, status)

describe.each(testDatabases)('MCP over HTTP on $name', (target) => {
  let t: TestApp
  let base: string
  const logLines: string[] = []
  beforeAll(async () => {
    t = await buildTestApp(target, { logStream: { write: (line) => { logLines.push(line) } } })
    base = await listening(t)
  })
  afterAll(() => t.close())

  describe('auth', () => {
    it('answers 401 without a token, or with a bad one, naming the protected-resource document as the client reached the server', async () => {
      const challenge = `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`
      for (const headers of [{}, { authorization: 'Bearer not.a.token' }, { authorization: 'Basic dXNlcjpwYXNz' }] as Array<Record<string, string>>) {
        const res = await rpc(base, initialize('2025-06-18'), headers)
        problemOf(res, 401)
        expect(res.headers.get('www-authenticate')).toBe(challenge)
      }
      // Forwarded headers are a client's word unless TRUST_PROXY names the proxy that sent them.
      const forwarded = await rpc(base, initialize('2025-06-18'), { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' })
      expect(forwarded.headers.get('www-authenticate')).toBe(challenge)
      // A Host that is not a host name gives the plain challenge, never a broken one.
      const odd = await t.inject({ method: 'POST', url: '/mcp', headers: { host: 'a" b' }, payload: initialize('2025-06-18') })
      expect(odd.statusCode).toBe(401)
      expect(odd.headers['www-authenticate']).toBe('Bearer')
    })

    it('serves the protected-resource document without a token (RFC 9728), naming no authorization server when none is configured', async () => {
      const res = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      expect(await res.json()).toEqual({
        resource: `${base}/mcp`, bearer_methods_supported: ['header'], resource_name: 'taskbase', resource_documentation: `${base}/docs`,
      })
    })

    it('never writes a token to the log', async () => {
      const account = await t.signUp()
      await rpc(base, call(1, 'add_task', { title: 'logged?' }), account.headers)
      await rpc(base, call(1, 'list_tasks', { cursor: account.accessToken }), account.headers)
      await rpc(base, initialize('2025-06-18'), { authorization: `Bearer ${account.accessToken}x` })
      const log = logLines.join('')
      expect(log).toContain('"url":"/mcp"')
      expect(log).not.toContain(account.accessToken)
      expect(log).not.toContain(account.accessToken.split('.')[2])
    })
  })

  it('runs the README\'s example as shown (in a child process), adding its task once however often it runs', async () => {
    const account = await t.signUp()
    const example = readmeExample()
    const shownUrl = 'http://127.0.0.1:3000'
    expect(example.split(shownUrl)).toHaveLength(2) // the one change: this test's server
    // Inside the checkout, where @modelcontextprotocol/sdk resolves as in a project that installed it.
    const cache = join(root, 'node_modules', '.cache', 'taskbase')
    mkdirSync(cache, { recursive: true })
    const dir = mkdtempSync(join(cache, 'readme-mcp-'))
    try {
      writeFileSync(join(dir, 'example.mjs'), example.replace(shownUrl, base))
      for (let i = 0; i < 2; i++) { // twice: the idempotency key makes the second run add nothing
        const ran = await runNode(dir, { TASKBASE_TOKEN: account.accessToken })
        expect(ran.code, ran.stderr).toBe(0)
        expect(ran.stderr).toBe('')
        expect(ran.stdout.split('\n')).toEqual(['Milk', '9 1', expect.stringMatching(/^true Refused \(400\): The arguments are not valid \[id: must be a UUID/), ''])
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    const tasks = (await t.inject({ url: '/api/v1/tasks', headers: account.headers })).json().items
    expect(tasks.map((task: { title: string, tags: string[] }) => [task.title, task.tags])).toEqual([['Milk', ['shopping']]])
  })

  describe('transport', () => {
    it.each(VERSIONS)('initializes at protocol version %s, without a session, and serves calls sent with that version', async (version) => {
      const { headers } = await t.signUp()
      const init = await rpc(base, initialize(version), headers)
      expect(init.status).toBe(200)
      expect(init.json().result).toMatchObject({ protocolVersion: version, serverInfo: { name: 'taskbase' }, capabilities: { tools: {} } })
      expect(init.headers.get('mcp-session-id')).toBeNull()
      const versioned = { ...headers, 'mcp-protocol-version': version }
      const initialized = await rpc(base, { jsonrpc: '2.0', method: 'notifications/initialized' }, versioned)
      expect([initialized.status, initialized.text]).toEqual([202, ''])
      const added = await rpc(base, call(2, 'add_task', { title: `made under ${version}` }), versioned)
      expect(added.json()).toMatchObject({ jsonrpc: '2.0', id: 2, result: { structuredContent: { title: `made under ${version}` } } })
      expect(PROTOCOL_VERSIONS).toContain(version)
    })

    it('documents the versions the SDK supports, newest first', () => {
      expect(PROTOCOL_VERSIONS).toEqual(SUPPORTED_PROTOCOL_VERSIONS)
    })

    it('answers an unknown version in initialize with its newest, and refuses one in MCP-Protocol-Version as a 400 problem', async () => {
      const { headers } = await t.signUp()
      expect((await rpc(base, initialize('2099-01-01'), headers)).json().result.protocolVersion).toBe('2025-11-25')
      const refused = await rpc(base, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { ...headers, 'mcp-protocol-version': '1999-01-01' })
      expect(problemOf(refused, 400).detail).toMatch(/Unsupported protocol version: 1999-01-01/)
    })

    it('works with the SDK\'s Client and StreamableHTTPClientTransport, current (2025-11-25) and 1.10 (2024-11-05)', async () => {
      const account = await t.signUp()
      const current = await agent(base, account.accessToken)
      expect(current.client.getServerVersion()).toMatchObject({ name: 'taskbase' })
      expect((await current.ok('add_task', { title: 'from 1.32' })).title).toBe('from 1.32')

      const old = new Client110({ name: 'sdk-1.10', version: '1.10.2' })
      await old.connect(new Transport110(new URL('/mcp', base), { requestInit: { headers: account.headers } }))
      try {
        expect((await old.listTools()).tools).toHaveLength(9)
        const result = await old.callTool({ name: 'list_tasks', arguments: {} }) as { content: Array<{ text: string }> }
        expect(JSON.parse(result.content[0]!.text).items.map((task: { title: string }) => task.title)).toEqual(['from 1.32'])
      } finally {
        await old.close()
      }
    })

    it('answers GET, DELETE and PUT on /mcp with 405 and Allow: POST, as a server without sessions', async () => {
      const { headers } = await t.signUp()
      for (const method of ['GET', 'DELETE', 'PUT']) {
        const res = await fetch(`${base}/mcp`, { method, headers: { ...headers, accept: 'text/event-stream' } })
        problemOf({ status: res.status, headers: res.headers, json: await res.json().then((body) => () => body) }, 405)
        expect(res.headers.get('allow'), method).toBe('POST')
      }
    })

    it('refuses what is not an MCP message as a 400 problem, and answers a client that did not send Accept', async () => {
      const { headers } = await t.signUp()
      problemOf(await rpc(base, { hello: 'world' }, headers), 400)
      problemOf(await rpc(base, [], headers), 400)
      const notJson = await fetch(`${base}/mcp`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"jsonrpc":' })
      expect(problemOf({ status: notJson.status, headers: notJson.headers, json: await notJson.json().then((body) => () => body) }, 400).detail)
        .toBe('The body is not valid JSON')
      const plain = await fetch(`${base}/mcp`, {
        method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 'a', method: 'tools/list' }),
      })
      expect(plain.status).toBe(200)
      expect((await plain.json()).result.tools).toHaveLength(9)
      // A method MCP has but this server does not offer is a JSON-RPC error, as the protocol says.
      expect((await rpc(base, { jsonrpc: '2.0', id: 3, method: 'resources/list' }, headers)).json().error.code).toBe(-32601)
    })
  })
})

/** One app for the settings an operator changes: a proxy in front, an identity provider, low limits. */
describe.each(testDatabases)('MCP behind a proxy, with an identity provider and low limits, on $name', (target) => {
  let t: TestApp
  let base: string
  beforeAll(async () => {
    t = await buildTestApp(target, {
      env: {
        TRUST_PROXY: 'loopback', AUTH_SHARED_SECRET: SECRET, AUTH_ISSUER: ISSUER, AUTH_SUBJECT_CLAIM: 'user.id',
        RATE_LIMIT_API_PER_MINUTE: '10', TASKS_PER_USER_MAX: '2', PROJECTS_PER_USER_MAX: '1',
      },
    })
    base = await listening(t)
  })
  afterAll(() => t.close())

  /** Better Auth's session_data token: HS256, the user in a `user` claim, no `sub`. */
  const sessionData = (user: Record<string, unknown>, expiresIn = '15m') => new SignJWT({ user })
    .setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setIssuedAt().setExpirationTime(expiresIn).sign(new TextEncoder().encode(SECRET))

  const proxied = { 'x-forwarded-host': 'tasks.example.com', 'x-forwarded-proto': 'https' }

  it('names the origin the trusted proxy was reached at, and the provider as the authorization server', async () => {
    const refused = await rpc(base, initialize('2025-06-18'), proxied)
    problemOf(refused, 401)
    expect(refused.headers.get('www-authenticate')).toBe('Bearer resource_metadata="https://tasks.example.com/.well-known/oauth-protected-resource/mcp"')
    const metadata = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`, { headers: proxied })
    expect(await metadata.json()).toEqual({
      resource: 'https://tasks.example.com/mcp',
      authorization_servers: [ISSUER],
      bearer_methods_supported: ['header'],
      resource_name: 'taskbase',
      resource_documentation: 'https://tasks.example.com/docs',
    })
  })

  it('takes the provider\'s token (shared secret, AUTH_SUBJECT_CLAIM=user.id) as REST does, for the same user', async () => {
    const token = await sessionData({ id: 'ba_agent_1', email: 'agent@frontend.example', name: 'Agent' })
    const a = await agent(base, token)
    const task = await a.ok('add_task', { title: 'Milk' })
    const headers = { authorization: `Bearer ${token}` }
    expect((await t.inject({ url: '/api/v1/tasks', headers })).json().items).toEqual([task])
    expect((await t.inject({ url: '/api/ba_agent_1/tasks', headers })).json().map((c: { id: string }) => c.id)).toEqual([task.id])
    const expired = await rpc(base, initialize('2025-06-18'), { authorization: `Bearer ${await sessionData({ id: 'ba_agent_1' }, '-1m')}` })
    problemOf(expired, 401)
    expect(expired.headers.get('www-authenticate')).toMatch(/^Bearer resource_metadata="/)
  })

  const list = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/list' })

  it('counts each request, and each call of a batch, against the user\'s API limit shared with REST; past it a 429 with Retry-After', async () => {
    const { headers } = await t.signUp()
    for (let i = 1; i <= 8; i++) {
      const res = await rpc(base, list(i), headers)
      expect(res.status).toBe(200)
      expect(res.headers.get('ratelimit-remaining')).toBe(String(10 - i))
    }
    expect((await t.inject({ url: '/api/v1/tasks', headers })).headers['ratelimit-remaining']).toBe('1')
    const batch = await rpc(base, [list(9), list(10)], headers) // two requests: one too many
    expect(problemOf(batch, 429).type).toBe('urn:problem-type:taskbase:rate-limited')
    const after = await rpc(base, list(11), headers)
    problemOf(after, 429)
    expect(Number(after.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await t.inject({ url: '/api/v1/tasks', headers })).statusCode).toBe(429)
  })

  it('answers a batch of calls with every answer, each counted', async () => {
    const { headers } = await t.signUp()
    const res = await rpc(base, [call(1, 'add_project', { name: 'One' }), call(2, 'list_projects', {}), list(3)], headers)
    expect(res.status).toBe(200)
    expect(res.json().map((answer: { id: number }) => answer.id).sort()).toEqual([1, 2, 3])
    expect(res.headers.get('ratelimit-remaining')).toBe('7')
  })

  it('refuses a create past TASKS_PER_USER_MAX and PROJECTS_PER_USER_MAX as a tool result with the REST detail', async () => {
    const account = await t.signUp()
    const a = await agent(base, account.accessToken)
    await a.ok('add_task', { title: 'one' })
    await a.ok('add_task', { title: 'two' })
    expect(await a.refused('add_task', { title: 'three' })).toBe('Refused (409 task-limit-reached): This account already holds 2 tasks, ' +
      'the most this server allows (TASKS_PER_USER_MAX); delete some before creating more')
    await a.ok('add_project', { name: 'only' })
    expect(await a.refused('add_project', { name: 'second' })).toMatch(/^Refused \(409 project-limit-reached\): This account already holds 1 projects/)
  })
})
