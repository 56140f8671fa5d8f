import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  JWT_SECRET, rawRequest, register, removeDir, request, SHARED_URL, sleep, startServer, stopServer, tempDir, throwawayDatabase,
  waitUntilUp, type Account, type RawAnswer, type ServerProcess,
} from './support.js'

/**
 * Thousands of malformed requests, over raw sockets so that nothing is tidied up on the way: every
 * answer must be a 4xx problem+json (or a success where the input was odd but valid), never a 5xx,
 * a hang, a stack trace or SQL; another user's data must not move; the log must hold no secret.
 */
interface Case {
  name: string
  raw: Buffer
  /** A success is a correct answer too (odd but valid input, or a harmless extra). */
  mayPass?: boolean
  /** Not HTTP at all: closing the connection without an answer is fine. */
  mayClose?: boolean
  /**
   * Node answers this itself before any of our code runs, with an empty 400: an HTTP/1.1 request
   * without a Host header (RFC 9112, section 3.2).
   */
  emptyBody?: boolean
}

const MARK = randomBytes(6).toString('hex')
/** Planted in bodies and headers; none may reach the log. */
const PASSWORD_MARK = `pw-${MARK}-secret`
const AUTH_MARK = `authz${MARK}token`

function http (method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Buffer {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body)
  const all: Record<string, string> = {
    host: '127.0.0.1',
    connection: 'close',
    ...(payload ? { 'content-length': String(payload.length) } : {}),
    ...headers,
  }
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), payload ?? Buffer.alloc(0)])
}

const json = { 'content-type': 'application/json' }

/** Bodies no route accepts (or, where `mayPass`, odd input a route may take). */
function badBodies (): Array<{ name: string, body: string | Buffer, mayPass?: boolean }> {
  const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n)
  const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)
  const bodies: Array<{ name: string, body: string | Buffer, mayPass?: boolean }> = [
    // Not JSON
    ...['{', '}', '{"title":', '{"title":"x"', '{"title":"x",}', "{'title':'x'}", '{title:"x"}', '[1,2', 'nul', 'undefined', 'NaN',
      '{"title":"x"} {"title":"y"}', '{"title":"x"}]', '/* c */{"title":"x"}', '\uFEFF{"title":"x"}', ' ', '\n\n', '"just a string"',
      '12345678901234567890123456789', '1e999', '-', 'true', 'null', '[]', '{"title":"\\x41"}', '{"title":"\\u12"}', '{"a":1,"a":2,"a":}']
      .map((body, i) => ({ name: `not JSON ${i}`, body })),
    { name: 'invalid UTF-8', body: Buffer.from([0x7b, 0x22, 0x74, 0x69, 0x74, 0x6c, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0x80, 0x22, 0x7d]), mayPass: true },
    { name: 'UTF-16 body', body: Buffer.from('{"title":"x"}', 'utf16le') },
    // Deep
    { name: 'deep array', body: deepArray(20_000) },
    { name: 'deep object', body: deepObject(8_000) },
    { name: 'deep in a field', body: `{"title":"x","tags":${deepArray(10_000)}}` },
    { name: 'deep with __proto__', body: `{"__proto__":{},"a":${deepArray(10_000)}}` },
    { name: 'deep with constructor.prototype', body: `{"constructor":{"prototype":${deepObject(5000)}}}` },
    { name: 'wide object', body: JSON.stringify(Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`k${i}`, i]))) },
    { name: 'long array', body: JSON.stringify({ title: 'x', tags: Array.from({ length: 5000 }, (_, i) => `t${i}`) }) },
    // Prototype pollution
    { name: '__proto__', body: '{"title":"x","__proto__":{"isAdmin":true}}' },
    { name: '__proto__ only', body: '{"__proto__":{"title":"x"}}' },
    { name: 'escaped __proto__', body: '{"title":"x","\\u005f_proto__":{"polluted":1}}' },
    { name: 'constructor.prototype', body: '{"title":"x","constructor":{"prototype":{"polluted":1}}}' },
    { name: 'nested __proto__', body: '{"title":"x","tags":[{"__proto__":{"a":1}}]}' },
    { name: 'prototype key', body: '{"prototype":{"title":"x"}}' },
    // NUL and lone surrogates
    { name: 'NUL in title', body: '{"title":"a\\u0000b","description":"x","name":"a\\u0000b"}' },
    { name: 'NUL in tag', body: '{"title":"a","tags":["a\\u0000"]}' },
    { name: 'NUL in key', body: '{"ti\\u0000tle":"a"}' },
    { name: 'raw NUL byte', body: Buffer.from('{"title":"a\u0000b"}') },
    { name: 'NUL in email', body: `{"email":"a\\u0000@example.com","password":"${PASSWORD_MARK}"}` },
    { name: 'NUL in token', body: '{"refreshToken":"abc\\u0000def"}' },
    { name: 'lone high surrogate', body: '{"title":"\\ud800"}', mayPass: true },
    { name: 'lone low surrogate', body: '{"title":"x\\udfff","description":"\\udc00"}', mayPass: true },
    { name: 'reversed pair', body: '{"title":"\\ude00\\ud83d"}', mayPass: true },
    { name: 'lone surrogate in tag', body: '{"title":"x","tags":["\\ud83d"]}', mayPass: true },
    { name: 'lone surrogate in email', body: `{"email":"\\ud800@example.com","password":"${PASSWORD_MARK}"}` },
    // Wrong types and out-of-range values
    ...[
      { title: 5 }, { title: null }, { title: true }, { title: [] }, { title: {} }, { title: '' }, { title: '   ' }, { title: 'x'.repeat(501) },
      { title: 'x', priority: 'urgent' }, { title: 'x', priority: 1 }, { title: 'x', dueAt: 'yesterday' }, { title: 'x', dueAt: '0000-01-01T00:00:00Z' },
      { title: 'x', dueAt: '2024-13-45T25:61:61Z' }, { title: 'x', dueAt: 1_700_000_000 }, { title: 'x', dueAt: '+275760-09-13T00:00:00Z' },
      { title: 'x', tags: 'a' }, { title: 'x', tags: [1] }, { title: 'x', tags: ['a'.repeat(51)] }, { title: 'x', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) },
      { title: 'x', tags: [null] }, { title: 'x', tags: [''] }, { title: 'x', completed: 'true' }, { title: 'x', completed: 1 },
      { title: 'x', description: 'd'.repeat(10_001) }, { title: 'x', description: 5 },
      { title: 'x', id: '00000000-0000-0000-0000-000000000000' }, { title: 'x', userId: 'someone' }, { title: 'x', version: 99 },
      { title: 'x', createdAt: '2020-01-01T00:00:00Z' }, { title: 'x', user_id: 'x' }, { title: 'x', unknown: 1 },
      { email: 'not-an-email', password: PASSWORD_MARK }, { email: 5, password: PASSWORD_MARK }, { email: 'a@b.c', password: 5 },
      { email: 'a@b.c', password: '' }, { email: `${'a'.repeat(400)}@example.com`, password: PASSWORD_MARK }, { email: ['a@b.c'], password: PASSWORD_MARK },
      { email: 'a@b.c', password: 'p'.repeat(100_00) }, { email: 'a@b.c', password: PASSWORD_MARK, isAdmin: true },
      { refreshToken: 5 }, { refreshToken: '' }, { refreshToken: 'r'.repeat(5000) }, { refreshToken: `${PASSWORD_MARK}' OR '1'='1` },
      { name: 5 }, { name: 'n'.repeat(1000) }, { name: 'x', email: 'other@example.com' },
      { currentPassword: 5, newPassword: PASSWORD_MARK }, { currentPassword: PASSWORD_MARK, newPassword: 'short' }, { currentPassword: PASSWORD_MARK },
      { password: 5 }, { password: PASSWORD_MARK, extra: 1 },
      { title: "x'); drop table tasks; --", priority: "high' or '1'='1" }, { title: 'x', completed: null, priority: null },
    ].map((value, i) => ({ name: `wrong type ${i}`, body: JSON.stringify(value) })),
  ]
  return bodies
}

describe('the server process under abusive requests', () => {
  let server: ServerProcess
  let dataDir: string | undefined
  let database: Awaited<ReturnType<typeof throwawayDatabase>> | undefined
  let victim: Account
  let attacker: Account
  let victimTaskIds: string[] = []
  let attackerTaskId: string
  let attackerClassicId: string

  beforeAll(async () => {
    // The production path when a server is at hand; the embedded default otherwise.
    if (SHARED_URL) database = await throwawayDatabase(SHARED_URL)
    else dataDir = await tempDir('abuse')
    server = await startServer(database
      ? { DATABASE_URL: database.url, JWT_SECRET, LOG_LEVEL: 'info' }
      : { DATA_DIR: dataDir!, LOG_LEVEL: 'info' })
    await waitUntilUp(server)
    victim = await register(server.base)
    attacker = await register(server.base)
    for (const payload of [{ title: 'Private plan', description: 'only mine', tags: ['secret'], priority: 'high', dueAt: '2030-01-01T00:00:00.000Z' }, { title: 'Second' }, { title: 'Third', tags: ['a', 'b'] }]) {
      const res = await request(server.base, '/api/v1/tasks', { method: 'POST', headers: victim.auth, json: payload })
      victimTaskIds.push(JSON.parse(res.body).id)
    }
    attackerTaskId = JSON.parse((await request(server.base, '/api/v1/tasks', { method: 'POST', headers: attacker.auth, json: { title: 'mine' } })).body).id
    attackerClassicId = JSON.parse((await request(server.base, `/api/${attacker.id}/tasks`, { method: 'POST', headers: attacker.auth, json: { title: 'classic' } })).body).id
  }, 60_000)

  afterAll(async () => {
    await stopServer(server)
    await database?.drop()
    await removeDir(dataDir)
  })

  /** What the victim sees, byte for byte, ETags included. */
  async function victimView (): Promise<string[]> {
    const paths = ['/api/v1/tasks?limit=100', '/api/v1/users/me', `/api/${victim.id}/tasks`, ...victimTaskIds.map((id) => `/api/v1/tasks/${id}`)]
    return Promise.all(paths.map(async (path) => {
      const res = await request(server.base, path, { headers: victim.auth })
      return `${path} ${res.status} ${res.headers.get('etag') ?? ''} ${res.body}`
    }))
  }

  function cases (): Case[] {
    const A = { authorization: `Bearer ${attacker.accessToken}` }
    const out: Case[] = []
    const add = (name: string, raw: Buffer, flags: Partial<Case> = {}) => out.push({ name, raw, ...flags })
    const [victimTask] = victimTaskIds

    // 1. Every body route, every bad body.
    const bodyRoutes: Array<[string, string, Record<string, string>]> = [
      ['POST', '/api/v1/auth/register', {}],
      ['POST', '/api/v1/auth/login', {}],
      ['POST', '/api/v1/auth/refresh', {}],
      ['POST', '/api/v1/auth/logout', {}],
      ['PATCH', '/api/v1/users/me', A],
      ['POST', '/api/v1/users/me/password', A],
      ['DELETE', '/api/v1/users/me', A],
      ['POST', '/api/v1/tasks', A],
      ['PATCH', `/api/v1/tasks/${attackerTaskId}`, A],
      ['PATCH', `/api/v1/tasks/${victimTask}`, A],
      ['POST', `/api/${attacker.id}/tasks`, A],
      ['PUT', `/api/${attacker.id}/tasks/${attackerClassicId}`, A],
      ['POST', `/api/${victim.id}/tasks`, A],
      ['PUT', `/api/${victim.id}/tasks/${victimTask}`, A],
      ['PATCH', `/api/${attacker.id}/tasks/${attackerClassicId}/complete`, A],
      ['POST', '/api/v1/events/tickets', A],
    ]
    const bodies = badBodies()
    for (const [method, path, auth] of bodyRoutes) {
      for (const body of bodies) {
        // An odd but valid body may be taken by the routes that write the caller's own data.
        const own = !path.includes(victim.id) && !path.includes(victimTask!)
        add(`${method} ${path.replace(/[0-9a-f-]{36}/g, ':id')}: ${body.name}`, http(method, path, { ...json, ...auth }, body.body), { mayPass: own })
      }
    }

    // 2. Wrong content types on every body route.
    const contentTypes: Array<[string, boolean]> = [
      ['text/plain', false], ['application/x-www-form-urlencoded', false], ['multipart/form-data; boundary=x', false], ['application/xml', false],
      ['application/jsonx', false], ['json', false], ['application/json; charset=utf-16', true], ['Application/JSON', true],
      ['application/json, text/plain', true], ['application/json; charset="bogus"', true], ['*/*', false], ['application/octet-stream', false],
      ['application/json\u0000', false], [`application/${'x'.repeat(2000)}`, false],
    ]
    for (const [method, path, auth] of bodyRoutes) {
      for (const [type, mayPass] of contentTypes) {
        add(`${method} ${path}: content-type ${type.slice(0, 30)}`, http(method, path, { ...auth, 'content-type': type }, '{"title":"x"}'), { mayPass })
      }
      add(`${method} ${path}: body without content-type`, http(method, path, auth, '{"title":"x"}'), { mayPass: true })
      add(`${method} ${path}: 70 KB body`, http(method, path, { ...json, ...auth }, JSON.stringify({ title: 'x', description: 'd'.repeat(70_000) })))
    }

    // 3. Authorization and other headers on every route.
    const routes: Array<[string, string]> = [
      ['GET', '/api/v1/tasks'], ['POST', '/api/v1/tasks'], ['GET', `/api/v1/tasks/${attackerTaskId}`], ['PATCH', `/api/v1/tasks/${attackerTaskId}`],
      ['DELETE', `/api/v1/tasks/${victimTask}`], ['GET', `/api/v1/tasks/${victimTask}`], ['GET', '/api/v1/users/me'], ['PATCH', '/api/v1/users/me'],
      ['POST', '/api/v1/users/me/password'], ['DELETE', '/api/v1/users/me'], ['GET', '/api/v1/sync'], ['GET', '/api/v1/events'],
      ['POST', '/api/v1/events/tickets'], ['GET', `/api/${attacker.id}/tasks`], ['POST', `/api/${attacker.id}/tasks`],
      ['GET', `/api/${victim.id}/tasks`], ['GET', `/api/${attacker.id}/tasks/${attackerClassicId}`], ['PUT', `/api/${attacker.id}/tasks/${attackerClassicId}`],
      ['DELETE', `/api/${victim.id}/tasks/${victimTask}`], ['PATCH', `/api/${attacker.id}/tasks/${attackerClassicId}/complete`],
      ['POST', '/api/v1/auth/login'], ['POST', '/api/v1/auth/refresh'],
    ]
    const [header, payload, signature] = attacker.accessToken.split('.')
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const authorizations: string[] = [
      '', 'Bearer', 'Bearer ', `Basic ${Buffer.from(`a:${PASSWORD_MARK}`).toString('base64')}`, `Bearer ${AUTH_MARK}`, `Bearer ${AUTH_MARK}.${AUTH_MARK}.${AUTH_MARK}`,
      `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`, `Bearer ${header}.${payload}.${signature!.slice(0, -2)}${AUTH_MARK.slice(0, 2)}`,
      `Bearer ${b64({ alg: 'HS512', typ: 'JWT' })}.${payload}.${signature}`, `Bearer ${header}.${b64({ sub: victim.id, exp: 9_999_999_999 })}.${signature}`,
      `Bearer  ${AUTH_MARK}`, `Bearer ${AUTH_MARK} extra`, `Bearer ${'A'.repeat(8000)}${AUTH_MARK}`, `Bearer ${attacker.refreshToken}`,
      `Bearer ${attacker.accessToken}, Bearer ${AUTH_MARK}`, `Token ${AUTH_MARK}`, `Bearer ${AUTH_MARK}\u00e9`,
    ]
    for (const [method, path] of routes) {
      const body = method === 'GET' || method === 'DELETE' ? undefined : '{"title":"x"}'
      for (const authorization of authorizations) {
        add(`${method} ${path}: authorization ${authorization.slice(0, 20)}`, http(method, path, { ...json, authorization }, body))
      }
      // With a valid token the event stream opens and stays open, as it should: only refusals there.
      if (path === '/api/v1/events') continue
      add(`${method} ${path}: 20 KB header`, http(method, path, { ...json, ...A, 'x-filler': 'f'.repeat(20_000) }, body))
      add(`${method} ${path}: 17 KB authorization`, http(method, path, { ...json, authorization: `Bearer ${AUTH_MARK}${'a'.repeat(17_000)}` }, body))
      add(`${method} ${path}: 300 headers`, http(method, path, { ...json, ...A, ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x-h${i}`, 'v'])) }, body), { mayPass: true })
      add(`${method} ${path}: odd request id`, http(method, path, { ...json, ...A, 'x-request-id': `<script>${'r'.repeat(300)}` }, body), { mayPass: true })
      add(`${method} ${path}: junk If-Match`, http(method, path, { ...json, ...A, 'if-match': `W/"${'x'.repeat(3000)}", *, "` }, body), { mayPass: true })
      add(`${method} ${path}: junk If-None-Match`, http(method, path, { ...json, ...A, 'if-none-match': '"a", W/, *' }, body), { mayPass: true })
      add(`${method} ${path}: long Idempotency-Key`, http(method, path, { ...json, ...A, 'idempotency-key': 'k'.repeat(300) }, body), { mayPass: true })
      add(`${method} ${path}: NUL in a header`, Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${AUTH_MARK}\u0000x\r\nconnection: close\r\n\r\n`, 'latin1'))
      add(`${method} ${path}: folded header`, Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer\r\n ${AUTH_MARK}\r\nconnection: close\r\n\r\n`, 'latin1'))
      add(`${method} ${path}: two Content-Length`, Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\nconnection: close\r\n\r\n{}`, 'latin1'))
      add(`${method} ${path}: TE and CL`, Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\nconnection: close\r\n\r\n0\r\n\r\n`, 'latin1'))
      add(`${method} ${path}: bad chunk`, Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, 'latin1'))
    }

    // 4. Path tricks in ids and user ids.
    const ids = [
      '..', '..%2f..%2fusers%2fme', '%2e%2e%2f%2e%2e%2fusers%2fme', '..;', '.%00.', '%00', '%ED%A0%80', '%zz', '%', '%25', '%2F', '%5C..%5C',
      'abc', "1' OR '1'='1", '1;DROP TABLE tasks', '00000000-0000-0000-0000-000000000000', victimTask!.toUpperCase(), `${victimTask}%00`, `${victimTask}.json`,
      ` ${victimTask}`, `${victimTask}/`, `${victimTask}//`, `{${victimTask}}`, 'x'.repeat(101), 'x'.repeat(5000), '%F0%9F%92%A9', '\u00e9',
      '٠١٢٣', 'null', 'undefined', '__proto__', 'constructor', '*', '-1', '1e308', `${victimTask};${attackerTaskId}`,
    ]
    for (const id of ids) {
      for (const [method, template] of [['GET', '/api/v1/tasks/:id'], ['PATCH', '/api/v1/tasks/:id'], ['DELETE', '/api/v1/tasks/:id'],
        ['GET', `/api/${attacker.id}/tasks/:id`], ['PUT', `/api/${attacker.id}/tasks/:id`], ['DELETE', `/api/${attacker.id}/tasks/:id`],
        ['PATCH', `/api/${attacker.id}/tasks/:id/complete`], ['GET', '/api/:id/tasks'], ['POST', '/api/:id/tasks'], ['GET', '/api/:id/tasks/' + victimTask]] as const) {
        const body = method === 'GET' || method === 'DELETE' ? undefined : '{"title":"x"}'
        add(`${method} ${template}: id ${id.slice(0, 20)}`, http(method, template.replace(':id', id), { ...json, ...A }, body), { mayPass: id === 'x'.repeat(101) ? false : undefined })
      }
    }
    for (const path of ['//api/v1/tasks', '/api//v1/tasks', '/api/v1/tasks/', '/api/v1/./tasks', '/api/v1/tasks/../users/me', '/API/V1/TASKS',
      '/api/v1/tasks;x', '/api/v1/tasks%2f' + victimTask, '/api/v1/tasks/' + victimTask + '?id=' + attackerTaskId, 'http://evil.example/api/v1/tasks',
      '*', '/api/v1/tasks#frag', `/api/${victim.id}/../${attacker.id}/tasks`, `/api/${victim.id}%2f..%2f${attacker.id}/tasks`]) {
      add(`GET ${path}`, http('GET', path, { ...json, ...A }), { mayPass: true })
    }

    // 5. Queries: wrong types, bad cursors, pollution, huge.
    const cursorOf = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const queries = [
      'limit=0', 'limit=101', 'limit=-1', 'limit=abc', 'limit=1e2', 'limit=1.5', 'limit=99999999999999999999', 'limit=1&limit=2', 'completed=maybe',
      'completed=1', 'priority=urgent', 'priority[]=high', 'sort=;drop', 'sort=-title,id', 'sort=__proto__', 'dueBefore=garbage', 'dueAfter=0000-01-01T00:00:00Z',
      'dueBefore=2024-02-30T00:00:00Z', `q=${'q'.repeat(300)}`, 'q=', 'q=%00', 'q=%25%5F%5C', `tag=${'t'.repeat(51)}`, `${'tag=x&'.repeat(30)}`, 'tag=',
      'status=done', 'status=', '__proto__[x]=1', 'constructor[prototype][x]=1', '__proto__=1', 'a[b][c][d][e][f]=1', 'since=', 'since=zzz', `since=${'s'.repeat(3000)}`,
      'cursor=', 'cursor=abc', 'cursor=%00', `cursor=${'c'.repeat(2001)}`, `cursor=${cursorOf({ id: victimTask, createdAt: '2020-01-01' })}`,
      `cursor=${cursorOf({ __proto__: { x: 1 }, s: 'title' })}`, `cursor=${cursorOf(['x', 1, null])}`, `cursor=${cursorOf("' OR 1=1 --")}`,
      `cursor=${cursorOf({ v: 1, sort: '-createdAt', last: [null, null] })}`, `cursor=${Buffer.from('\u0000\u0001\u0002').toString('base64url')}`,
      `x=${'y'.repeat(15_000)}`, `x=${'y'.repeat(20_000)}`, Array.from({ length: 1000 }, (_, i) => `k${i}=v`).join('&'), '%zz=%zz', '&&&==&=', 'limit=%ED%A0%80',
    ]
    for (const query of queries) {
      for (const path of ['/api/v1/tasks', `/api/${attacker.id}/tasks`, '/api/v1/sync']) {
        add(`GET ${path}?${query.slice(0, 30)}`, http('GET', `${path}?${query}`, A), { mayPass: true })
      }
    }

    // 6. Methods nobody serves.
    for (const method of ['PUT', 'TRACE', 'PROPFIND', 'CONNECT', 'FOO', 'get', 'OPTIONS', 'HEAD', 'SEARCH', 'PATCH']) {
      for (const path of ['/api/v1/tasks', `/api/v1/tasks/${victimTask}`, '/api/v1/users/me', `/api/${victim.id}/tasks`, '/api/v1/auth/login', '/healthz', '/api/v1/sync']) {
        add(`${method} ${path}`, http(method, path, { ...json, ...A }, method === 'HEAD' || method === 'get' ? undefined : '{"title":"x"}'), { mayPass: method === 'HEAD', mayClose: method === 'CONNECT' || method === 'get' })
      }
    }

    // 7. Not HTTP.
    for (const [name, bytes] of [
      ['TLS hello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])],
      ['HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
      ['HTTP/0.9', Buffer.from('GET /api/v1/tasks\r\n\r\n')],
      ['HTTP/3.0', Buffer.from('GET /api/v1/tasks HTTP/3.0\r\nhost: x\r\n\r\n')],
      ['space in path', Buffer.from('GET /api/v1/ta sks HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')],
      ['bare LF', Buffer.from('GET /api/v1/tasks HTTP/1.1\nhost: x\nconnection: close\n\n')],
      ['binary', randomBytes(512)],
      ['request line 20 KB', Buffer.from(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`)],
      ['negative length', Buffer.from('POST /api/v1/tasks HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\nconnection: close\r\n\r\n')],
      ['header without colon', Buffer.from('GET /api/v1/tasks HTTP/1.1\r\nhost: x\r\nnonsense\r\nconnection: close\r\n\r\n')],
    ] as const) {
      add(`raw: ${name}`, bytes, { mayClose: true })
    }
    add('raw: no Host header', Buffer.from(`GET /api/v1/tasks HTTP/1.1\r\nauthorization: Bearer ${AUTH_MARK}\r\nconnection: close\r\n\r\n`), { emptyBody: true })
    return out
  }

  it('answers 3,000+ malformed requests with 4xx problem+json only, leaks nothing, changes no one else\'s data', async () => {
    const before = await victimView()
    const all = cases()
    expect(all.length).toBeGreaterThanOrEqual(3000)

    const stack = /\n\s+at \S|at \S+ \(\S+:\d+:\d+\)|node_modules\/|file:\/\//
    const sql = /Failed query|syntax error at or near|"tasks"\.|"users"\.|violates \S+ constraint|duplicate key|relation "|\bselect .* from\b|insert into/i
    const failures: Array<{ name: string, why: string, status: number, body: string }> = []
    const statuses: Record<string, number> = {}
    const passed: string[] = []
    let next = 0
    const started = performance.now()
    let slowest = 0
    const worker = async () => {
      while (next < all.length) {
        const c = all[next++]!
        const res: RawAnswer = await rawRequest(server.port, c.raw, 10_000)
        slowest = Math.max(slowest, res.ms)
        statuses[res.status] = (statuses[res.status] ?? 0) + 1
        const fail = (why: string) => failures.push({ name: c.name, why, status: res.status, body: res.body.slice(0, 300) })
        if (res.status === -1) fail('no answer within 10 s')
        else if (res.status === 0) { if (!c.mayClose) fail('connection closed without an answer') }
        else if (res.status >= 500) fail('5xx')
        else if (res.status < 400) { passed.push(c.name); if (!c.mayPass) fail('accepted') }
        else if (c.emptyBody && res.body === '') { /* Node's own answer */ }
        else if (!c.raw.subarray(0, 5).equals(Buffer.from('HEAD '))) {
          const type = res.headers['content-type'] ?? ''
          let body: { status?: unknown, title?: unknown, detail?: unknown, type?: unknown } = {}
          try { body = JSON.parse(res.body) } catch { /* checked below */ }
          if (!type.startsWith('application/problem+json')) fail(`content-type ${type}`)
          else if (body.status !== res.status || typeof body.title !== 'string' || typeof body.detail !== 'string' || typeof body.type !== 'string') fail('not a problem body')
        }
        if (stack.test(res.body)) fail('stack trace in the body')
        if (sql.test(res.body)) fail('SQL in the body')
      }
    }
    await Promise.all(Array.from({ length: 12 }, worker))
    const elapsedMs = performance.now() - started

    // The server is still up and whole; the victim sees exactly what they saw.
    expect((await request(server.base, '/healthz')).status).toBe(200)
    expect(server.child.exitCode).toBeNull()
    const after = await victimView()
    await sleep(200) // the last log lines
    const log = server.output()
    const secrets: Record<string, string> = {
      'the victim\'s password': 'correct horse battery staple',
      'a password in a body': PASSWORD_MARK,
      'an Authorization value': AUTH_MARK,
      'the victim\'s access token': victim.accessToken,
      'the victim\'s refresh token': victim.refreshToken,
      'the attacker\'s access token': attacker.accessToken,
      'the attacker\'s access token signature': attacker.accessToken.split('.')[2]!,
      'the attacker\'s refresh token': attacker.refreshToken,
      'a Bearer value': 'Bearer ey',
    }
    const leaked = Object.entries(secrets).filter(([, secret]) => log.includes(secret)).map(([what]) => what)

    console.log(`[faults] abuse: ${JSON.stringify({
      requestsSent: all.length,
      statuses,
      fiveHundreds: Object.entries(statuses).filter(([s]) => Number(s) >= 500).reduce((n, [, c]) => n + c, 0),
      failures: failures.length,
      acceptedOddButValid: passed.length,
      secretsInLog: leaked.length,
      logLines: log.split('\n').length,
      elapsedMs: Math.round(elapsedMs),
      slowestAnswerMs: Math.round(slowest),
    })}`)
    const byWhy: Record<string, string[]> = {}
    for (const f of failures) (byWhy[f.why] ??= []).push(`${f.name} -> ${f.status} ${f.body.slice(0, 160)}`)
    expect(Object.fromEntries(Object.entries(byWhy).map(([why, list]) => [why, `${list.length}: ${list.slice(0, 6).join(' | ')}`]))).toEqual({})
    expect(after).toEqual(before)
    expect(leaked).toEqual([])
  }, 120_000)
})
