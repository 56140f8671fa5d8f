import { randomBytes, randomUUID } from 'node:crypto'
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, PASSWORD, protectedOperations, sessionIdOf, testDatabases, type Account, type TestApp } from '../helpers.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const nowSeconds = () => Math.floor(Date.now() / 1000)

interface Claims {
  sub?: string
  /** The session; null leaves the claim out. */
  sid?: string | null
  iss?: string
  aud?: string
  iat?: number
  exp?: number
  jti?: string | null
}

describe.each(testDatabases)('access tokens on $name', (target) => {
  let t: TestApp
  let alice: Account

  /** A token as the server would issue it for alice, with `overrides` applied; `jti: null` leaves it out. */
  const sign = async (overrides: Claims = {}, { alg = 'HS256', secret = t.keys.secret }: { alg?: string, secret?: Uint8Array } = {}) => {
    const claims = { sub: alice.id, sid: sessionIdOf(alice.accessToken) as string | null, iss: t.keys.issuer, aud: t.keys.audience, iat: nowSeconds(), exp: nowSeconds() + 900, jti: randomUUID() as string | null, ...overrides }
    const jwt = new SignJWT(claims.sid === null ? {} : { sid: claims.sid })
      .setProtectedHeader({ alg, typ: 'JWT' })
      .setIssuedAt(claims.iat)
      .setExpirationTime(claims.exp)
    if (claims.sub !== undefined) jwt.setSubject(claims.sub)
    if (claims.iss !== undefined) jwt.setIssuer(claims.iss)
    if (claims.aud !== undefined) jwt.setAudience(claims.aud)
    if (claims.jti !== null) jwt.setJti(claims.jti)
    return jwt.sign(secret)
  }

  /** Every protected operation of /openapi.json answers 401 problem+json with a Bearer challenge. */
  const expectRefused = async (headers: Record<string, string>) => {
    for (const op of await protectedOperations(t.app)) {
      const res = await t.inject({ method: op.method, url: op.url, headers, ...(['POST', 'PUT', 'PATCH'].includes(op.method) && { payload: {} }) })
      expectProblem(res, 401)
      expect(res.headers['www-authenticate'], `${op.method} ${op.path}`).toMatch(/^Bearer\b/)
    }
  }

  beforeAll(async () => {
    t = await buildTestApp(target)
    alice = await t.signUp()
  })
  afterAll(() => t.close())

  describe('refused with 401', () => {
    it('without an Authorization header', async () => {
      await expectRefused({})
    })

    it.each([
      ['a scheme without a token', 'Bearer'],
      ['a scheme and an empty token', 'Bearer '],
      ['another scheme', 'Basic xyz'],
      ['two tokens', 'Bearer a b'],
      ['a token without a scheme', 'eyJhbGciOiJIUzI1NiJ9.e30.x'],
    ])('with a malformed header: %s', async (_, authorization) => {
      await expectRefused({ authorization })
    })

    it('with a valid token under another scheme', async () => {
      await expectRefused({ authorization: `Basic ${alice.accessToken}` })
    })

    it('with a garbage token', async () => {
      await expectRefused({ authorization: 'Bearer not-a-jwt' })
      await expectRefused({ authorization: 'Bearer aaaa.bbbb.cccc' })
    })

    it('with a token signed with another secret', async () => {
      await expectRefused({ authorization: `Bearer ${await sign({}, { secret: randomBytes(32) })}` })
    })

    it('with an unsigned token (alg: none)', async () => {
      const header = base64url({ alg: 'none', typ: 'JWT' })
      const payload = base64url({ sub: alice.id, iss: t.keys.issuer, aud: t.keys.audience, iat: nowSeconds(), exp: nowSeconds() + 900, jti: randomUUID() })
      await expectRefused({ authorization: `Bearer ${header}.${payload}.` })
    })

    it('with a token of another algorithm signed with the right secret (HS512)', async () => {
      const token = await sign({}, { alg: 'HS512' })
      expect(decodeProtectedHeader(token).alg).toBe('HS512')
      await expectRefused({ authorization: `Bearer ${token}` })
    })

    it('with a token that expired after it was accepted (and remembered)', async () => {
      const token = await sign({ exp: nowSeconds() + 1 })
      expect((await t.inject({ url: '/api/v1/tasks', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200)
      await new Promise((resolve) => setTimeout(resolve, 2_100))
      await expectRefused({ authorization: `Bearer ${token}` })
    })

    it('with an expired token', async () => {
      const token = await sign({ iat: nowSeconds() - 3600, exp: nowSeconds() - 60 })
      await expectRefused({ authorization: `Bearer ${token}` })
    })

    it('with a token for another audience', async () => {
      await expectRefused({ authorization: `Bearer ${await sign({ aud: 'someone-else' })}` })
    })

    it('with a token from another issuer', async () => {
      await expectRefused({ authorization: `Bearer ${await sign({ iss: 'https://evil.example.com' })}` })
    })

    it('with a token that names no session (no sid), or a session that never was', async () => {
      await expectRefused({ authorization: `Bearer ${await sign({ sid: null })}` })
      await expectRefused({ authorization: `Bearer ${await sign({ sid: randomUUID() })}` })
    })

    it('with a token without jti', async () => {
      await expectRefused({ authorization: `Bearer ${await sign({ jti: null })}` })
    })

    it('with a token whose sub is not a UUID', async () => {
      await expectRefused({ authorization: `Bearer ${await sign({ sub: 'admin' })}` })
      await expectRefused({ authorization: `Bearer ${await sign({ sub: `${alice.id}x` })}` })
    })

    it('with a well-signed token for a user that does not exist', async () => {
      await expectRefused({ authorization: `Bearer ${await sign({ sub: randomUUID() })}` })
    })

    it('with the token of a deleted user', async () => {
      const doomed = await t.signUp()
      expect((await t.inject({ url: '/api/v1/users/me', headers: doomed.headers })).statusCode).toBe(200)
      const deleted = await t.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: doomed.headers, payload: { password: PASSWORD } })
      expect(deleted.statusCode).toBe(204)
      await expectRefused(doomed.headers)
    })
  })

  describe('accepted', () => {
    it('issues an HS256 JWT with sub, iat, exp (15 minutes), iss, aud and jti', async () => {
      expect(decodeProtectedHeader(alice.accessToken).alg).toBe('HS256')
      const { payload } = await jwtVerify(alice.accessToken, t.keys.secret, {
        algorithms: ['HS256'], issuer: t.keys.issuer, audience: t.keys.audience,
      })
      expect(payload.sub).toBe(alice.id)
      expect(payload.sub).toMatch(UUID)
      expect(typeof payload.jti).toBe('string')
      expect(payload.exp! - payload.iat!).toBe(900)
      const other = await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: alice.email, password: PASSWORD } })
      const { payload: second } = await jwtVerify(other.json().accessToken, t.keys.secret)
      expect(second.jti).not.toBe(payload.jti)
    })

    it('takes a valid token signed by hand with the same keys', async () => {
      const token = await sign()
      const me = await t.inject({ url: '/api/v1/users/me', headers: { authorization: `Bearer ${token}` } })
      expect(me.statusCode).toBe(200)
      expect(me.json().id).toBe(alice.id)
      const tasks = await t.inject({ url: '/api/v1/tasks', headers: { authorization: `Bearer ${token}` } })
      expect(tasks.statusCode).toBe(200)
    })

    it('takes the token the server issued, on every protected operation (whatever else it then answers)', async () => {
      for (const op of await protectedOperations(t.app)) {
        if (op.method !== 'GET' || op.path === '/api/v1/events') continue // reads only: nothing here may change alice
        expect((await t.inject({ url: op.url, headers: alice.headers })).statusCode, `${op.method} ${op.path}`).not.toBe(401)
      }
    })
  })
})
