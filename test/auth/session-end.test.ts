import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../src/db/client.js'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, type Account, type TestApp } from '../helpers.js'

const SESSION_ENDED = 'urn:problem-type:taskbase:session-ended'
const REUSED = 'urn:problem-type:taskbase:refresh-token-reused'

/**
 * A session that ends (logout, a password change made in another session, a reused refresh token)
 * takes its access tokens with it: they used to read and write for up to 15 minutes more (issue 16).
 * Every process learns of the end over the notice feed (test/scale/two-instances.test.ts checks
 * that across processes); here, one process, and no query per request once a session is known.
 */
describe.each(testDatabases)('the end of a session on $name', (target) => {
  let t: TestApp
  /** Statements that ask whether a session is live, as sent to the database. */
  let sessionChecks = 0
  beforeAll(async () => {
    const opened = await target.open()
    const counting: Database = {
      ...opened.database,
      query: (statement, values) => {
        if (statement.text.includes('from refresh_tokens where family_id = $1 and revoked_at is null')) sessionChecks++
        return opened.database.query(statement, values)
      },
    }
    t = await buildTestApp(target, { database: counting })
    const close = t.close
    t.close = async () => { await close(); await opened.drop() }
  })
  afterAll(() => t.close())

  const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })
  const me = (accessToken: string) => t.inject({ url: '/api/v1/users/me', headers: bearer(accessToken) })
  const login = async (account: Account) => (await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: account.email, password: PASSWORD } })).json()
  const refresh = (refreshToken: string) => t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } })
  const logout = (refreshToken: string) => t.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refreshToken } })
  const ticket = async (accessToken: string) => t.inject({ method: 'POST', url: '/api/v1/events/tickets', headers: bearer(accessToken) })

  it('checks a session once, then serves its requests with no query about it', async () => {
    const account = await t.signUp()
    const before = sessionChecks
    for (let i = 0; i < 20; i++) expect((await me(account.accessToken)).statusCode).toBe(200)
    expect(sessionChecks - before).toBe(1)
  })

  it('refuses the access token, and its tickets, of a session that logged out; other sessions go on', async () => {
    const account = await t.signUp()
    const other = await login(account)
    expect((await me(account.accessToken)).statusCode).toBe(200) // known live now
    const bought = (await ticket(account.accessToken)).json().ticket
    expect((await logout(account.refreshToken)).statusCode).toBe(204)

    expectProblem(await me(account.accessToken), 401)
    expectProblem(await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: account.headers, payload: { title: 'after logout' } }), 401)
    expectProblem(await ticket(account.accessToken), 401)
    expectProblem(await t.inject({ url: `/api/v1/events?ticket=${bought}` }), 401) // bought before the logout
    expect((await me(other.accessToken)).statusCode).toBe(200)
    expect((await t.inject({ url: '/api/v1/tasks', headers: account.headers })).statusCode).toBe(401)
  })

  it('ends every other session on a password change, and keeps the one that changed it', async () => {
    const account = await t.signUp()
    const other = await login(account)
    expect((await me(other.accessToken)).statusCode).toBe(200)
    const changed = await t.inject({ method: 'POST', url: '/api/v1/users/me/password', headers: account.headers,
      payload: { currentPassword: PASSWORD, newPassword: 'another good password' } })
    expect(changed.statusCode).toBe(204)

    expectProblem(await me(other.accessToken), 401)
    expect(expectProblem(await refresh(other.refreshToken), 401)).toMatchObject({ type: SESSION_ENDED, detail: expect.stringMatching(/session has ended/) })
    // The session that changed it: its access token and its refresh token still work.
    expect((await me(account.accessToken)).statusCode).toBe(200)
    const next = await refresh(account.refreshToken)
    expect(next.statusCode).toBe(200)
    expect((await me(next.json().accessToken)).statusCode).toBe(200)
  })

  it('ends the session of a reused refresh token, for the thief and the victim alike', async () => {
    const account = await t.signUp()
    const victim = (await refresh(account.refreshToken)).json() // the victim refreshed; the thief kept the old token
    expect((await me(victim.accessToken)).statusCode).toBe(200)
    expect(expectProblem(await refresh(account.refreshToken), 401).type).toBe(REUSED)
    expectProblem(await me(victim.accessToken), 401)
    expectProblem(await me(account.accessToken), 401)
    // Presented again, it is a session that has ended, not a new theft.
    expect(expectProblem(await refresh(account.refreshToken), 401).type).toBe(SESSION_ENDED)
    expect(expectProblem(await refresh(victim.refreshToken), 401).type).toBe(SESSION_ENDED)
  })

  it('says the session ended, not that the token was reused, when refreshing after a logout', async () => {
    const account = await t.signUp()
    expect((await logout(account.refreshToken)).statusCode).toBe(204)
    const problem = expectProblem(await refresh(account.refreshToken), 401)
    expect(problem).toMatchObject({ type: SESSION_ENDED })
    expect(problem.detail).not.toMatch(/already used/)
  })
})
