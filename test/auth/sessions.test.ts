import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, testKeys, uniqueEmail, type TestApp } from '../helpers.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
const REUSED = 'urn:problem-type:taskbase:refresh-token-reused'
const SESSION_ENDED = 'urn:problem-type:taskbase:session-ended'

/** Every key of a JSON value, at any depth. */
function keysOf (value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysOf)
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)])
  return []
}

const sessionShape = (email: string, name: string | null = null) => ({
  user: {
    id: expect.stringMatching(UUID),
    email,
    name,
    timezone: 'UTC',
    createdAt: expect.stringMatching(UTC_TIME),
    updatedAt: expect.stringMatching(UTC_TIME),
  },
  accessToken: expect.any(String),
  refreshToken: expect.any(String),
  tokenType: 'Bearer',
  expiresIn: 900,
})

describe.each(testDatabases)('sessions on $name', (target) => {
  let t: TestApp

  const register = (payload: Record<string, unknown>) => t.inject({ method: 'POST', url: '/api/v1/auth/register', payload })
  const login = (email: string, password = PASSWORD) => t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } })
  const refresh = (refreshToken: string) => t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } })
  const logout = (refreshToken: string) => t.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refreshToken } })
  const me = (accessToken: string) => t.inject({ url: '/api/v1/users/me', headers: { authorization: `Bearer ${accessToken}` } })

  beforeAll(async () => { t = await buildTestApp(target) })
  afterAll(() => t.close())

  describe('POST /api/v1/auth/register', () => {
    it.each([
      ['an email without @', (email: string) => ({ email: email.replace('@', ''), password: PASSWORD }), 'body.email'],
      ['an email without domain', (email: string) => ({ email: email.split('@')[0] + '@', password: PASSWORD }), 'body.email'],
      ['an empty email', () => ({ email: '', password: PASSWORD }), 'body.email'],
      ['a missing email', () => ({ password: PASSWORD }), 'body.email'],
      ['a missing password', (email: string) => ({ email }), 'body.password'],
      ['a password of 7 characters', (email: string) => ({ email, password: '1234567' }), 'body.password'],
      ['a password of 129 characters', (email: string) => ({ email, password: 'p'.repeat(129) }), 'body.password'],
      ['a number as password', (email: string) => ({ email, password: 12345678 }), 'body.password'],
      ['an unknown field', (email: string) => ({ email, password: PASSWORD, role: 'admin' }), 'body.role'],
      ['a client-set id', (email: string) => ({ email, password: PASSWORD, id: '00000000-0000-4000-8000-000000000000' }), 'body.id'],
    ])('refuses %s with a 400 naming the field, and creates no account', async (_, payload, path) => {
      const email = uniqueEmail('invalid')
      const problem = expectProblem(await register(payload(email)), 400)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path)
      // Nothing was stored: the address is still free.
      expectProblem(await login(email), 401)
      expect((await register({ email, password: PASSWORD })).statusCode).toBe(201)
    })

    it('creates an account: 201 with the user and a token pair, never a password or hash', async () => {
      const email = uniqueEmail('new')
      const res = await register({ email, password: PASSWORD })
      expect(res.statusCode).toBe(201)
      const body = res.json()
      expect(body).toEqual(sessionShape(email))
      expect(body.user.createdAt).toBe(body.user.updatedAt)
      expect(keysOf(body).filter((k) => /password|hash|secret/i.test(k))).toEqual([])
      expect(res.body).not.toContain(PASSWORD)
      expect(body.refreshToken).not.toBe(body.accessToken)
      expect(body.refreshToken.length).toBeGreaterThanOrEqual(43) // 256 random bits

      const signedIn = await me(body.accessToken)
      expect(signedIn.statusCode).toBe(200)
      expect(signedIn.json()).toEqual(body.user)
    })

    it('keeps an optional name', async () => {
      const email = uniqueEmail('named')
      const res = await register({ email, password: PASSWORD, name: 'Alice' })
      expect(res.statusCode).toBe(201)
      expect(res.json()).toEqual(sessionShape(email, 'Alice'))
    })

    it('takes passwords of exactly 8 and 128 characters', async () => {
      for (const password of ['p'.repeat(8), 'p'.repeat(128)]) {
        const email = uniqueEmail('edge')
        expect((await register({ email, password })).statusCode, `length ${password.length}`).toBe(201)
        expect((await login(email, password)).statusCode, `length ${password.length}`).toBe(200)
      }
    })

    it('answers 409 for a taken email, whatever its case, and leaves the account alone', async () => {
      const local = `alice-${randomBytes(4).toString('hex')}`
      expect((await register({ email: `${local}@example.com`, password: PASSWORD })).statusCode).toBe(201)
      for (const email of [`${local}@example.com`, `${local.toUpperCase()}@Example.com`]) {
        expectProblem(await register({ email, password: 'another password' }), 409)
      }
      expect((await login(`${local}@example.com`)).statusCode).toBe(200)
      expectProblem(await login(`${local}@example.com`, 'another password'), 401)
    })

    it('answers 409 for a taken email typed with surrounding spaces', async () => {
      const local = `alice-${randomBytes(4).toString('hex')}`
      expect((await register({ email: `${local}@example.com`, password: PASSWORD })).statusCode).toBe(201)
      expectProblem(await register({ email: ` ${local.toUpperCase()}@Example.com `, password: 'another password' }), 409)
      expectProblem(await login(`${local}@example.com`, 'another password'), 401)
    })
  })

  describe('POST /api/v1/auth/login', () => {
    it('signs in with the right password, whatever the case of the email', async () => {
      const email = `bob-${randomBytes(4).toString('hex')}@example.com`
      const account = await t.signUp(email)
      for (const typed of [email, email.toUpperCase(), ` ${email.replace('bob', 'BoB')} `]) {
        const res = await login(typed)
        expect(res.statusCode, typed).toBe(200)
        const body = res.json()
        expect(body).toEqual(sessionShape(email))
        expect(body.user.id).toBe(account.id)
        expect(keysOf(body).filter((k) => /password|hash|secret/i.test(k))).toEqual([])
        expect((await me(body.accessToken)).statusCode).toBe(200)
      }
    })

    it('answers an unknown email and a wrong password with the same 401', async () => {
      const account = await t.signUp()
      const wrongPassword = expectProblem(await login(account.email, 'not the password'), 401)
      const unknownEmail = expectProblem(await login(uniqueEmail('nobody'), PASSWORD), 401)
      expect(unknownEmail.detail).toBe(wrongPassword.detail)
      // Everything but the request id in `instance`.
      expect({ ...unknownEmail, instance: undefined }).toEqual({ ...wrongPassword, instance: undefined })
    })

    it.each([
      ['a missing password', { email: 'x@example.com' }],
      ['a missing email', { password: PASSWORD }],
      ['an unknown field', { email: 'x@example.com', password: PASSWORD, remember: true }],
    ])('refuses %s with a 400', async (_, payload) => {
      expectProblem(await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload }), 400)
    })
  })

  describe('POST /api/v1/auth/refresh', () => {
    it('returns a new pair; the new tokens work', async () => {
      const account = await t.signUp()
      const res = await refresh(account.refreshToken)
      expect(res.statusCode).toBe(200)
      const pair = res.json()
      expect(pair).toMatchObject({ accessToken: expect.any(String), refreshToken: expect.any(String), tokenType: 'Bearer', expiresIn: 900 })
      expect(pair.refreshToken).not.toBe(account.refreshToken)
      expect(keysOf(pair).filter((k) => /password|hash|secret/i.test(k))).toEqual([])
      const signedIn = await me(pair.accessToken)
      expect(signedIn.statusCode).toBe(200)
      expect(signedIn.json().id).toBe(account.id)
      expect((await refresh(pair.refreshToken)).statusCode).toBe(200)
    })

    it('refuses the old refresh token after rotation', async () => {
      const account = await t.signUp()
      expect((await refresh(account.refreshToken)).statusCode).toBe(200)
      expectProblem(await refresh(account.refreshToken), 401)
    })

    it('revokes the whole family when a rotated token is presented again, and no other family', async () => {
      const account = await t.signUp()
      const otherFamily = (await login(account.email)).json().refreshToken as string

      const second = (await refresh(account.refreshToken)).json().refreshToken as string
      const third = (await refresh(second)).json().refreshToken as string

      const reuse = expectProblem(await refresh(account.refreshToken), 401)
      expect(reuse.type).toBe(REUSED)

      // The newest token of that family, which was never used, is revoked too.
      expectProblem(await refresh(third), 401)

      // Another login of the same user is another family and keeps working.
      const other = await refresh(otherFamily)
      expect(other.statusCode).toBe(200)
      expect((await refresh(other.json().refreshToken)).statusCode).toBe(200)
    })

    it('refuses an unknown refresh token', async () => {
      const res = expectProblem(await refresh(randomBytes(32).toString('base64url')), 401)
      expect(res.type).not.toBe(REUSED)
    })

    it.each([
      ['an empty token', { refreshToken: '' }],
      ['a missing token', {}],
      ['a number as token', { refreshToken: 42 }],
      ['an unknown field', { refreshToken: 'x', userId: '00000000-0000-4000-8000-000000000000' }],
    ])('refuses %s with a 400', async (_, payload) => {
      expectProblem(await t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload }), 400)
    })

    it('refuses an expired refresh token', async () => {
      // A second app on the same database whose refresh tokens expire at once.
      const shortLived = await buildTestApp(target, { database: t.database, keys: testKeys({ refreshTokenTtlDays: 0 }) })
      try {
        const account = await shortLived.signUp()
        await new Promise((resolve) => setTimeout(resolve, 20))
        const res = await shortLived.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: account.refreshToken } })
        expectProblem(res, 401)
      } finally {
        await shortLived.close()
      }
    })
  })

  describe('POST /api/v1/auth/logout', () => {
    it("answers 204 and ends that session's refresh tokens, not the user's other sessions", async () => {
      const account = await t.signUp()
      const otherSession = (await login(account.email)).json().refreshToken as string
      const rotated = (await refresh(account.refreshToken)).json().refreshToken as string

      const res = await logout(rotated)
      expect(res.statusCode).toBe(204)
      expect(res.body).toBe('')
      expectProblem(await refresh(rotated), 401)

      expect((await refresh(otherSession)).statusCode).toBe(200)
    })

    it('answers 204 for an unknown or already ended token', async () => {
      expect((await logout(randomBytes(32).toString('base64url'))).statusCode).toBe(204)
      const account = await t.signUp()
      expect((await logout(account.refreshToken)).statusCode).toBe(204)
      expect((await logout(account.refreshToken)).statusCode).toBe(204)
      expectProblem(await refresh(account.refreshToken), 401)
    })

    it('refuses a body without a token with a 400', async () => {
      expectProblem(await t.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: {} }), 400)
    })

    // Concurrent transactions need a server database: PGlite runs one statement at a time.
    it.skipIf(target.name !== 'postgres')('never leaves a valid token behind when a refresh races the end of its session', async () => {
      const won = { refresh: 0, end: 0 }
      for (let i = 0; i < 30; i++) {
        const account = await t.signUp()
        // The session that refreshes, and what ends it: its own logout, or a password change made in another session.
        const session = i % 2 === 0 ? account : (await login(account.email)).json()
        const end = () => i % 2 === 0
          ? logout(account.refreshToken)
          : t.inject({ method: 'POST', url: '/api/v1/users/me/password', headers: account.headers, payload: { currentPassword: PASSWORD, newPassword: `a different password ${i}` } })
        // Sent in one order, then in the other: the first sent mostly takes the session lock first.
        const [refreshed, ended] = i % 4 < 2
          ? await Promise.all([refresh(session.refreshToken), end()])
          : await Promise.all([end(), refresh(session.refreshToken)]).then(([e, r]) => [r, e] as const)
        expect(ended.statusCode).toBe(204)
        if (refreshed.statusCode === 200) {
          // The refresh committed first: the end came after it, and took its new tokens too.
          won.refresh++
          expect(expectProblem(await refresh(refreshed.json().refreshToken), 401).type).toBe(SESSION_ENDED)
          expectProblem(await me(refreshed.json().accessToken), 401)
        } else {
          // The end committed first: the refresh was told so.
          won.end++
          expect(expectProblem(refreshed, 401).type).toBe(SESSION_ENDED)
        }
        expectProblem(await me(session.accessToken), 401)
      }
      expect(won.refresh + won.end).toBe(30)
      // Both orders happened, so both branches above were checked.
      expect(won.refresh).toBeGreaterThan(0)
      expect(won.end).toBeGreaterThan(0)
      console.log(`[${target.name}] of 30 races, the refresh committed first in ${won.refresh}, the end of the session in ${won.end}`)
    })
  })
})
