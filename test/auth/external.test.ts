import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.js'
import { statement } from '../../src/db/sql.js'
import type { Database } from '../../src/db/client.js'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, uniqueEmail, type TestApp } from '../helpers.js'

/** A stand-in for a Better Auth front end: Ed25519 keys served as a JWK Set on 127.0.0.1. */
class IdentityProvider {
  private server: Server | undefined
  private served: JWK[] = []
  private keys = new Map<string, CryptoKey>()
  private publicJwks = new Map<string, JWK>()
  fetches = 0
  failWith: number | undefined
  url = ''

  async start (port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      this.fetches++
      if (this.failWith) { res.writeHead(this.failWith).end(); return }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.served }))
    })
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async stop (): Promise<void> {
    this.server?.closeAllConnections()
    await new Promise<void>((resolve) => this.server ? this.server.close(() => resolve()) : resolve())
  }

  get jwksUrl (): string { return `${this.url}/api/auth/jwks` }

  /** Adds a key; Better Auth's JWK Set entries carry kty, crv, x and kid (no alg). */
  async addKey (kid: string, { publish = true } = {}): Promise<JWK> {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    this.keys.set(kid, privateKey)
    const jwk = { ...await exportJWK(publicKey), kid }
    this.publicJwks.set(kid, jwk)
    if (publish) this.served.push(jwk)
    return jwk
  }

  replaceKeys (kids: string[]): void {
    this.served = this.served.filter((k) => kids.includes(k.kid!))
  }

  publish (kid: string): void {
    this.served.push(this.publicJwks.get(kid)!)
  }

  token (sub: string, { kid = 'key-1', iss = this.url, aud = this.url, exp = '15m', claims = {} as Record<string, unknown> } = {}) {
    return new SignJWT({ email: `${sub}@frontend.example`, name: `User ${sub}`, ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' })
      .setSubject(sub)
      .setIssuer(iss)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(this.keys.get(kid)!)
  }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const SHARED_SECRET = 'a shared secret of the front end, 32+ bytes'

function hs256Claims (secret: string, sub: string, claims: Record<string, unknown>) {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('15m')
    .sign(new TextEncoder().encode(secret))
}

function hs256 (secret: Uint8Array, sub: string, claims: { iss?: string, aud?: string } = {}) {
  let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('15m')
  if (claims.iss) jwt = jwt.setIssuer(claims.iss)
  if (claims.aud) jwt = jwt.setAudience(claims.aud)
  return jwt.sign(secret)
}

describe.each(testDatabases)('external identity provider tokens on $name', (target) => {
  const idp = new IdentityProvider()
  let t: TestApp
  beforeAll(async () => {
    await idp.start()
    await idp.addKey('key-1')
    t = await buildTestApp(target, {
      env: {
        AUTH_JWKS_URL: idp.jwksUrl,
        AUTH_ISSUER: idp.url,
        AUTH_AUDIENCE: idp.url,
        AUTH_SHARED_SECRET: SHARED_SECRET,
        AUTH_JWKS_REFRESH_COOLDOWN_SECONDS: '1',
      },
    })
  })
  afterAll(async () => {
    await t.close()
    await idp.stop()
  })

  it('accepts a Better Auth style EdDSA token and creates the user from its claims', async () => {
    const me = await t.inject({ url: '/api/v1/users/me', headers: bearer(await idp.token('ba_alice')) })
    expect(me.statusCode).toBe(200)
    expect(me.json()).toMatchObject({ email: 'ba_alice@frontend.example', name: 'User ba_alice' })
    const created = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: bearer(await idp.token('ba_alice')), payload: { title: 'from the front end' } })
    expect(created.statusCode).toBe(201)
    const classic = await t.inject({ url: '/api/ba_alice/tasks', headers: bearer(await idp.token('ba_alice')) })
    expect(classic.statusCode).toBe(200)
    expect(classic.json()).toEqual([expect.objectContaining({ id: created.json().id, user_id: 'ba_alice' })])
  })

  it('serves the classic routes to a user id of 255 characters (a path parameter past Fastify\'s default 100)', async () => {
    const sub = `ba_${'x'.repeat(252)}`
    const headers = bearer(await idp.token(sub))
    const created = await t.inject({ method: 'POST', url: `/api/${sub}/tasks`, headers, payload: { title: 'long id' } })
    expect(created.statusCode).toBe(201)
    const listed = await t.inject({ url: `/api/${sub}/tasks`, headers })
    expect(listed.statusCode).toBe(200)
    expect(listed.json()).toEqual([expect.objectContaining({ id: created.json().id, user_id: sub })])
  })

  it.each([
    ['a wrong issuer', { iss: 'https://evil.example' }],
    ['a wrong audience', { aud: 'https://other.example' }],
    ['an expired token', { exp: '-1m' }],
  ])('refuses %s with 401', async (_, options) => {
    const res = await t.inject({ url: '/api/v1/users/me', headers: bearer(await idp.token('ba_bob', options)) })
    expectProblem(res, 401)
    expect(res.headers['www-authenticate']).toBe('Bearer')
  })

  it('refuses a token whose kid the provider does not serve', async () => {
    await idp.addKey('unpublished', { publish: false })
    expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(await idp.token('ba_carol', { kid: 'unpublished' })) }), 401)
  })

  it('follows a key rotation: a new kid is fetched once the cooldown has passed', async () => {
    await idp.addKey('key-2', { publish: false })
    expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(await idp.token('ba_dan', { kid: 'key-2' })) }), 401)
    idp.publish('key-2')
    idp.replaceKeys(['key-2'])
    await new Promise((resolve) => setTimeout(resolve, 1100)) // the cooldown is 1 s in this test
    const res = await t.inject({ url: '/api/v1/users/me', headers: bearer(await idp.token('ba_dan', { kid: 'key-2' })) })
    expect(res.statusCode).toBe(200)
  })

  it('does not refetch the JWK Set for every unknown kid (rate-limited)', async () => {
    const before = idp.fetches
    await idp.addKey('forged', { publish: false })
    for (let i = 0; i < 20; i++) {
      expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(await idp.token('ba_eve', { kid: 'forged' })) }), 401)
    }
    expect(idp.fetches - before).toBeLessThanOrEqual(1)
  })

  it('accepts HS256 tokens signed with the shared secret', async () => {
    const token = await hs256(new TextEncoder().encode(SHARED_SECRET), 'hs_frank', { iss: idp.url, aud: idp.url })
    const res = await t.inject({ url: '/api/v1/users/me', headers: bearer(token) })
    expect(res.statusCode).toBe(200)
  })

  it('keeps the shared-secret provider\'s users apart from the JWK Set provider\'s, whatever iss the token claims', async () => {
    const victim = bearer(await idp.token('ba_victim', { kid: 'key-2' }))
    const task = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: victim, payload: { title: 'victim only' } })
    expect(task.statusCode).toBe(201)
    const claimant = bearer(await hs256(new TextEncoder().encode(SHARED_SECRET), 'ba_victim', { iss: idp.url, aud: idp.url }))
    const me = await t.inject({ url: '/api/v1/users/me', headers: claimant })
    expect(me.statusCode).toBe(200)
    expect(me.json().id).not.toBe((await t.inject({ url: '/api/v1/users/me', headers: victim })).json().id)
    expect((await t.inject({ url: '/api/v1/tasks', headers: claimant })).json().items).toEqual([])
    expectProblem(await t.inject({ url: `/api/v1/tasks/${task.json().id}`, headers: claimant }), 404)
  })

  it('refuses an HS256 token signed with the public key as the HMAC secret (algorithm confusion)', async () => {
    const [publicJwk] = idp['served'] as JWK[]
    for (const secret of [JSON.stringify(publicJwk), publicJwk!.x!, Buffer.from(publicJwk!.x!, 'base64url').toString('latin1')]) {
      const token = await hs256(new TextEncoder().encode(secret), 'hs_mallory', { iss: idp.url, aud: idp.url })
      expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(token) }), 401)
    }
  })

  it('refuses alg none and an EdDSA token re-signed by nobody', async () => {
    const payload = Buffer.from(JSON.stringify({ sub: 'ba_alice', iss: idp.url, aud: idp.url, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`
    expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(none) }), 401)
    const real = await idp.token('ba_alice', { kid: 'key-2' })
    const [header, , signature] = real.split('.')
    expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(`${header}.${payload}.${signature}`) }), 401)
  })

  it('creates one user when ten first requests of a new subject race', async () => {
    const token = await idp.token('ba_racer', { kid: 'key-2' })
    const responses = await Promise.all(Array.from({ length: 10 }, () => t.inject({ url: '/api/v1/users/me', headers: bearer(token) })))
    expect(responses.map((r) => r.statusCode)).toEqual(Array(10).fill(200))
    expect(new Set(responses.map((r) => r.json().id)).size).toBe(1)
    const rows = await t.database.query(statement('select id from users where auth_subject = $1'), ['ba_racer'])
    expect(rows).toHaveLength(1)
  })

  it('gives external users no password: login is 401, password change 409, deletion needs none', async () => {
    const headers = bearer(await idp.token('ba_nopass', { kid: 'key-2' }))
    expect((await t.inject({ url: '/api/v1/users/me', headers })).statusCode).toBe(200)
    expectProblem(await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'ba_nopass@frontend.example', password: PASSWORD } }), 401)
    expectProblem(await t.inject({ method: 'POST', url: '/api/v1/users/me/password', headers, payload: { currentPassword: 'anything', newPassword: PASSWORD } }), 409)
    expect((await t.inject({ method: 'DELETE', url: '/api/v1/users/me', headers })).statusCode).toBe(204)
  })

  it('keeps a local account and an external user of the same email apart', async () => {
    const email = uniqueEmail('shared')
    const local = await t.signUp(email)
    const localTask = await t.createTask(local, { title: 'local only' })
    const headers = bearer(await idp.token('ba_twin', { kid: 'key-2', claims: { email } }))
    const list = await t.inject({ url: '/api/v1/tasks', headers })
    expect(list.json().items).toEqual([])
    expectProblem(await t.inject({ url: `/api/v1/tasks/${localTask.id}`, headers }), 404)
    const login = await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: PASSWORD } })
    expect(login.json().user.id).toBe(local.id)
  })
})

/**
 * One embedded database for the tests below, each of which builds an app of its own configuration
 * on it (their subjects differ): each PGlite opened costs seconds of CPU.
 */
let embedded: { database: Database, drop: () => Promise<void> }
beforeAll(async () => { embedded = await testDatabases[0]!.open() })
afterAll(() => embedded.drop())

describe('tokens of providers that put the user elsewhere, and profiles that change', () => {
  const target = testDatabases[0]!
  const secret = 'BETTER_AUTH_SECRET of the front end, 32 bytes+'

  /** A token shaped like Better Auth's session_data cookie: HS256, the user in `user`, no sub, iss or aud. */
  const sessionData = (user: Record<string, unknown>, expiresIn = '15m') => new SignJWT({
    session: { id: 'sess_1', userId: user.id, expiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString() },
    user,
  }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret))

  it('accepts Better Auth\'s session_data token with AUTH_SUBJECT_CLAIM=user.id, taking email and name beside the id', async () => {
    const t = await buildTestApp(target, { database: embedded.database, env: { AUTH_SHARED_SECRET: secret, AUTH_SUBJECT_CLAIM: 'user.id' } })
    try {
      const headers = bearer(await sessionData({ id: 'ba_user_7', email: 'seven@frontend.example', name: 'Seven' }))
      const me = await t.inject({ url: '/api/v1/users/me', headers })
      expect(me.statusCode).toBe(200)
      expect(me.json()).toMatchObject({ email: 'seven@frontend.example', name: 'Seven' })
      const created = await t.inject({ method: 'POST', url: '/api/ba_user_7/tasks', headers, payload: { title: 'from the session cookie' } })
      expect(created.statusCode).toBe(201)
      expect(created.json().user_id).toBe('ba_user_7')
      // Without the user's id, or expired, it is refused like any invalid token.
      expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(await sessionData({ email: 'x@frontend.example' })) }), 401)
      expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(await sessionData({ id: 'ba_user_7' }, '-1m')) }), 401)
    } finally {
      await t.close()
    }
  })

  it('follows the token\'s email and name when they change, writing only then', async () => {
    const t = await buildTestApp(target, { database: embedded.database, env: { AUTH_SHARED_SECRET: secret } })
    try {
      const token = (claims: Record<string, unknown>) => hs256Claims(secret, 'ba_mover', claims)
      const first = await t.inject({ url: '/api/v1/users/me', headers: bearer(await token({ email: 'old@frontend.example', name: 'Old' })) })
      expect(first.json()).toMatchObject({ email: 'old@frontend.example', name: 'Old' })
      const same = await t.inject({ url: '/api/v1/users/me', headers: bearer(await token({ email: 'old@frontend.example', name: 'Old' })) })
      expect(same.json().updatedAt).toBe(first.json().updatedAt) // no write when nothing changed
      const moved = await t.inject({ url: '/api/v1/users/me', headers: bearer(await token({ email: 'new@frontend.example', name: 'New' })) })
      expect(moved.json()).toMatchObject({ id: first.json().id, email: 'new@frontend.example', name: 'New' })
      // A token that says nothing of them leaves them as they are.
      expect((await t.inject({ url: '/api/v1/users/me', headers: bearer(await token({})) })).json()).toMatchObject({ email: 'new@frontend.example', name: 'New' })
    } finally {
      await t.close()
    }
  })
})

describe('an identity provider that is down', () => {
  const target = testDatabases[0]!

  it('is not asked again on every request while it fails: fetches back off', async () => {
    const idp = new IdentityProvider()
    await idp.start()
    await idp.addKey('key-1')
    idp.failWith = 500
    const t = await buildTestApp(target, { database: embedded.database, env: { AUTH_JWKS_URL: idp.jwksUrl, AUTH_JWKS_REFRESH_COOLDOWN_SECONDS: '0' } })
    try {
      const token = await idp.token('ba_backoff')
      for (let i = 0; i < 30; i++) expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(token) }), 503)
      expect(idp.fetches).toBeLessThanOrEqual(2)
    } finally {
      await t.close()
      await idp.stop()
    }
  })

  it('fetches again soon for a key minted just after a fetch, within the cooldown, not 30 s later', async () => {
    const idp = new IdentityProvider()
    await idp.start()
    await idp.addKey('key-1')
    const t = await buildTestApp(target, { database: embedded.database, env: { AUTH_JWKS_URL: idp.jwksUrl, AUTH_JWKS_REFRESH_COOLDOWN_SECONDS: '1' } })
    try {
      expect((await t.inject({ url: '/api/v1/users/me', headers: bearer(await idp.token('ba_first')) })).statusCode).toBe(200)
      await idp.addKey('minted-later') // published right after our fetch
      const token = await idp.token('ba_later', { kid: 'minted-later' })
      await new Promise((resolve) => setTimeout(resolve, 1_100))
      expect((await t.inject({ url: '/api/v1/users/me', headers: bearer(token) })).statusCode).toBe(200)
      expect(loadConfig({}).externalAuth.jwksCooldownMs).toBe(10_000) // the default: at most six fetches a minute
    } finally {
      await t.close()
      await idp.stop()
    }
  })

  it('answers 503 for its tokens (never 500, never accepted), and recovers when it is back', async () => {
    const idp = new IdentityProvider()
    await idp.start()
    await idp.addKey('key-1')
    const port = Number(new URL(idp.url).port)
    const token = await idp.token('ba_down')
    idp.failWith = 500
    const t = await buildTestApp(target, { database: embedded.database, env: { AUTH_JWKS_URL: idp.jwksUrl, AUTH_JWKS_REFRESH_COOLDOWN_SECONDS: '0' } })
    try {
      const failing = await t.inject({ url: '/api/v1/users/me', headers: bearer(token) })
      expect(expectProblem(failing, 503).type).toBe('urn:problem-type:taskbase:identity-provider-unavailable')
      expect(failing.headers['retry-after']).toBeDefined()

      await idp.stop() // connection refused
      expectProblem(await t.inject({ url: '/api/v1/users/me', headers: bearer(token) }), 503)
      // Our own tokens do not depend on the provider.
      const local = await t.signUp()
      expect((await t.inject({ url: '/api/v1/users/me', headers: local.headers })).statusCode).toBe(200)

      idp.failWith = undefined
      await idp.start(port)
      // Failed fetches back off (1 s, then 2, 4...): it is accepted again within seconds.
      let status = 503
      const deadline = Date.now() + 8_000
      while (status === 503 && Date.now() < deadline) {
        status = (await t.inject({ url: '/api/v1/users/me', headers: bearer(token) })).statusCode
        if (status === 503) await new Promise((resolve) => setTimeout(resolve, 200))
      }
      expect(status).toBe(200)
    } finally {
      await t.close()
      await idp.stop()
    }
  })
})
