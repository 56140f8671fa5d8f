import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, uniqueEmail, type Account, type TestApp } from '../helpers.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
const NEW_PASSWORD = 'a brand new passphrase'

describe.each(testDatabases)('the signed-in user on $name', (target) => {
  let t: TestApp

  const login = (email: string, password = PASSWORD) => t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } })
  const refresh = (refreshToken: string) => t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } })
  const getMe = (account: Account) => t.inject({ url: '/api/v1/users/me', headers: account.headers })
  const patchMe = (account: Account, payload: unknown) => t.inject({ method: 'PATCH', url: '/api/v1/users/me', headers: account.headers, payload: payload as Record<string, unknown> })
  const changePassword = (account: Account, payload: Record<string, unknown>) =>
    t.inject({ method: 'POST', url: '/api/v1/users/me/password', headers: account.headers, payload })
  const deleteMe = (account: Account, payload: Record<string, unknown>) =>
    t.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: account.headers, payload })

  beforeAll(async () => { t = await buildTestApp(target) })
  afterAll(() => t.close())

  describe('GET /api/v1/users/me', () => {
    it('requires a token', async () => {
      const res = await t.inject({ url: '/api/v1/users/me' })
      expectProblem(res, 401)
      expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/)
    })

    it('returns the signed-in user, without password or hash', async () => {
      const account = await t.signUp()
      const res = await getMe(account)
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({
        id: account.id,
        email: account.email,
        name: null,
        timezone: 'UTC',
        createdAt: expect.stringMatching(UTC_TIME),
        updatedAt: expect.stringMatching(UTC_TIME),
      })
      expect(account.id).toMatch(UUID)
    })

    it('returns each user their own account', async () => {
      const alice = await t.signUp()
      const bob = await t.signUp()
      expect((await getMe(alice)).json().id).toBe(alice.id)
      expect((await getMe(bob)).json().id).toBe(bob.id)
    })
  })

  describe('PATCH /api/v1/users/me', () => {
    it('sets a trimmed name and clears it with null', async () => {
      const account = await t.signUp()
      const before = (await getMe(account)).json()

      const named = await patchMe(account, { name: '  Alice Liddell  ' })
      expect(named.statusCode).toBe(200)
      expect(named.json()).toMatchObject({ id: account.id, email: account.email, name: 'Alice Liddell', createdAt: before.createdAt })
      expect(Date.parse(named.json().updatedAt)).toBeGreaterThanOrEqual(Date.parse(before.updatedAt))
      expect((await getMe(account)).json()).toEqual(named.json())

      const cleared = await patchMe(account, { name: null })
      expect(cleared.statusCode).toBe(200)
      expect(cleared.json().name).toBeNull()
      expect((await getMe(account)).json().name).toBeNull()
    })

    it('sets the time zone as the time-zone database spells it, and keeps the fields not named', async () => {
      const account = await t.signUp()
      expect((await patchMe(account, { name: 'Ada' })).json()).toMatchObject({ name: 'Ada', timezone: 'UTC' })
      const moved = await patchMe(account, { timezone: 'europe/berlin' })
      expect(moved.statusCode).toBe(200)
      expect(moved.json()).toMatchObject({ name: 'Ada', timezone: 'Europe/Berlin' })
      expect((await getMe(account)).json().timezone).toBe('Europe/Berlin')
      // Aliases are names too, kept as given.
      expect((await patchMe(account, { timezone: 'US/Pacific' })).json().timezone).toBe('US/Pacific')
      expect((await patchMe(account, { name: 'Ada King' })).json()).toMatchObject({ name: 'Ada King', timezone: 'US/Pacific' })
      expect((await patchMe(account, { timezone: 'UTC', name: null })).json()).toMatchObject({ name: null, timezone: 'UTC' })
    })

    it.each([
      ['an unknown zone', { timezone: 'Mars/Olympus_Mons' }],
      ['an offset, not a zone', { timezone: '+01:00' }],
      ['an empty zone', { timezone: '' }],
      ['a number as the zone', { timezone: 1 }],
    ])('refuses %s with a 400 naming body.timezone and saying what it takes', async (_, payload) => {
      const account = await t.signUp()
      const problem = expectProblem(await patchMe(account, payload), 400)
      expect(problem.errors).toHaveLength(1)
      expect(problem.errors[0].path).toBe('body.timezone')
      if (typeof payload.timezone === 'string' && payload.timezone !== '') expect(problem.errors[0].message).toMatch(/IANA time zone name, such as Europe\/Berlin/)
      expect((await getMe(account)).json().timezone).toBe('UTC')
    })

    it('refuses an empty body with a 400 naming the fields it takes', async () => {
      const account = await t.signUp()
      const problem = expectProblem(await patchMe(account, {}), 400)
      expect(problem.errors).toEqual([{ path: 'body', message: 'must name at least one field to change: name, timezone' }])
    })

    it.each([
      ['a blank name', { name: '   ' }, 'body.name'],
      ['an empty name', { name: '' }, 'body.name'],
      ['a number as name', { name: 5 }, 'body.name'],
      ['an unknown field', { name: 'Mallory', email: 'mallory@example.com' }, 'body.email'],
      ['a read-only field', { name: 'Mallory', id: '00000000-0000-4000-8000-000000000000' }, 'body.id'],
      ['a password field', { name: 'Mallory', password: 'hunter2hunter2' }, 'body.password'],
    ])('refuses %s with a 400 naming the field, and changes nothing', async (_, payload, path) => {
      const account = await t.signUp()
      expect((await patchMe(account, { name: 'Kept' })).statusCode).toBe(200)
      const before = (await getMe(account)).json()
      const problem = expectProblem(await patchMe(account, payload), 400)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path)
      expect((await getMe(account)).json()).toEqual(before)
      expect((await login(account.email)).statusCode).toBe(200)
    })

    it('requires a token', async () => {
      expectProblem(await t.inject({ method: 'PATCH', url: '/api/v1/users/me', payload: { name: 'x' } }), 401)
    })
  })

  describe('POST /api/v1/users/me/password', () => {
    it('answers 403 for a wrong current password and keeps the old one', async () => {
      const account = await t.signUp()
      expectProblem(await changePassword(account, { currentPassword: 'not my password', newPassword: NEW_PASSWORD }), 403)
      expect((await login(account.email)).statusCode).toBe(200)
      expectProblem(await login(account.email, NEW_PASSWORD), 401)
      expect((await refresh(account.refreshToken)).statusCode).toBe(200)
    })

    it.each([
      ['a new password of 7 characters', { currentPassword: PASSWORD, newPassword: '1234567' }, 'body.newPassword'],
      ['a new password of 129 characters', { currentPassword: PASSWORD, newPassword: 'p'.repeat(129) }, 'body.newPassword'],
      ['a missing current password', { newPassword: NEW_PASSWORD }, 'body.currentPassword'],
      ['an unknown field', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD, confirm: NEW_PASSWORD }, 'body.confirm'],
    ])('refuses %s with a 400 and keeps the old password', async (_, payload, path) => {
      const account = await t.signUp()
      const problem = expectProblem(await changePassword(account, payload), 400)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path)
      expect((await login(account.email)).statusCode).toBe(200)
    })

    it('changes the password with 204, ending every other session of the user and keeping this one', async () => {
      const account = await t.signUp()
      const secondLogin = (await login(account.email)).json().refreshToken as string
      const thirdLogin = (await login(account.email)).json().refreshToken as string
      const rotated = (await refresh(thirdLogin)).json().refreshToken as string
      const bystander = await t.signUp()

      const res = await changePassword(account, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD })
      expect(res.statusCode).toBe(204)
      expect(res.body).toBe('')

      expect((await login(account.email, NEW_PASSWORD)).statusCode).toBe(200)
      expectProblem(await login(account.email, PASSWORD), 401)
      for (const token of [secondLogin, rotated]) {
        expect(expectProblem(await refresh(token), 401).type).toBe('urn:problem-type:taskbase:session-ended')
      }
      // The session that made the change goes on.
      expect((await refresh(account.refreshToken)).statusCode).toBe(200)

      // A session started after the change works; another user's sessions are untouched.
      const fresh = (await login(account.email, NEW_PASSWORD)).json().refreshToken as string
      expect((await refresh(fresh)).statusCode).toBe(200)
      expect((await refresh(bystander.refreshToken)).statusCode).toBe(200)
    })

    it('requires a token', async () => {
      expectProblem(await t.inject({ method: 'POST', url: '/api/v1/users/me/password', payload: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } }), 401)
    })
  })

  describe('DELETE /api/v1/users/me', () => {
    it('answers 403 for a wrong password and deletes nothing', async () => {
      const account = await t.signUp()
      const task = await t.createTask(account, { title: 'Keep me' })
      expectProblem(await deleteMe(account, { password: 'not my password' }), 403)
      expect((await getMe(account)).statusCode).toBe(200)
      expect((await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: account.headers })).statusCode).toBe(200)
      expect((await login(account.email)).statusCode).toBe(200)
      expect((await refresh(account.refreshToken)).statusCode).toBe(200)
    })

    it.each([
      ['a missing password', {}],
      ['an unknown field', { password: PASSWORD, force: true }],
    ])('refuses %s with a 400 and deletes nothing', async (_, payload) => {
      const account = await t.signUp()
      expectProblem(await deleteMe(account, payload), 400)
      expect((await getMe(account)).statusCode).toBe(200)
    })

    it('deletes the account and all its tasks; the email can be used again', async () => {
      const email = uniqueEmail('leaving')
      const account = await t.signUp(email)
      const tasks = [await t.createTask(account, { title: 'One' }), await t.createTask(account, { title: 'Two', tags: ['x'] })]
      const bystander = await t.signUp()
      const theirs = await t.createTask(bystander, { title: 'Not yours' })

      const res = await deleteMe(account, { password: PASSWORD })
      expect(res.statusCode).toBe(204)
      expect(res.body).toBe('')

      expectProblem(await getMe(account), 401)
      expectProblem(await t.inject({ url: '/api/v1/tasks', headers: account.headers }), 401)
      expectProblem(await login(email), 401)
      expectProblem(await refresh(account.refreshToken), 401)

      const again = await t.signUp(email)
      expect(again.id).not.toBe(account.id)
      const list = await t.inject({ url: '/api/v1/tasks', headers: again.headers })
      expect(list.statusCode).toBe(200)
      expect(list.json().items).toEqual([])
      for (const task of tasks) {
        expectProblem(await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: again.headers }), 404)
      }

      // Other users keep their data.
      expect((await t.inject({ url: `/api/v1/tasks/${theirs.id}`, headers: bystander.headers })).json()).toEqual(theirs)
    })

    it('requires a token', async () => {
      expectProblem(await t.inject({ method: 'DELETE', url: '/api/v1/users/me', payload: { password: PASSWORD } }), 401)
    })
  })
})
