import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { statement } from '../../src/db/sql.js'
import { syncQueries } from '../../src/sync/queries.js'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, testKeys, type Account, type TestApp } from '../helpers.js'

type Change =
  | { type: 'task', op: 'upsert', task: { id: string, version: number, title: string } }
  | { type: 'project', op: 'upsert', project: { id: string, name: string } }
  | { type: 'task' | 'project', op: 'delete', id: string, deletedAt: string }
interface Page { changes: Change[], cursor: string, hasMore: boolean }

describe.each(testDatabases)('GET /api/v1/sync on $name', (target) => {
  let t: TestApp
  beforeAll(async () => { t = await buildTestApp(target) })
  afterAll(() => t.close())

  /** The user's place in the change log, and what holds it: live tasks' seqs and tombstones. */
  const changeLog = async (userId: string) => {
    const [user] = await t.database.query<{ changeSeq: number }>(statement('select change_seq as "changeSeq" from users where id = $1'), [userId])
    const rows = await t.database.query<{ seq: number, op: string }>(statement(`select seq, 'upsert' as op from tasks where user_id = $1
      union all select seq, 'delete' from tombstones where user_id = $1 order by seq`), [userId])
    return { head: user?.changeSeq, rows }
  }
  const sync = async (account: Account, query = ''): Promise<Page> => {
    const res = await t.inject({ url: `/api/v1/sync${query}`, headers: account.headers })
    if (res.statusCode !== 200) throw new Error(`sync: ${res.statusCode} ${res.body}`)
    return res.json()
  }
  /** Follows hasMore to the end; returns every page. */
  const syncAll = async (account: Account, since?: string, limit = 500): Promise<Page[]> => {
    const pages: Page[] = []
    let cursor = since
    do {
      const params = new URLSearchParams({ limit: String(limit), ...(cursor ? { since: cursor } : {}) })
      pages.push(await sync(account, `?${params}`))
      cursor = pages.at(-1)!.cursor
    } while (pages.at(-1)!.hasMore)
    return pages
  }

  describe('refusals', () => {
    it('answers 401 without a token, 400 for a malformed or forged cursor and a bad limit', async () => {
      expectProblem(await t.inject({ url: '/api/v1/sync' }), 401)
      const owner = await t.signUp()
      const { cursor } = await sync(owner)
      for (const since of ['garbage', `${cursor}x`, cursor.replace(/^./, (c) => (c === 'W' ? 'X' : 'W')), `${cursor}.extra`]) {
        const res = await t.inject({ url: `/api/v1/sync?since=${encodeURIComponent(since)}`, headers: owner.headers })
        expect(expectProblem(res, 400).errors[0].path).toBe('query.since')
      }
      expectProblem(await t.inject({ url: '/api/v1/sync?limit=1001', headers: owner.headers }), 400)
    })

    it("answers 400 for another user's cursor", async () => {
      const alice = await t.signUp()
      const mallory = await t.signUp()
      await t.createTask(alice, { title: 'secret' })
      const { cursor } = await sync(alice)
      const res = await t.inject({ url: `/api/v1/sync?since=${encodeURIComponent(cursor)}`, headers: mallory.headers })
      expectProblem(res, 400)
    })
  })

  it('gives the full state without since, paged, then only what changed, deletes as tombstones', async () => {
    const owner = await t.signUp()
    const created = []
    for (let i = 0; i < 5; i++) created.push(await t.createTask(owner, { title: `task ${i}` }))
    const full = await syncAll(owner, undefined, 2)
    expect(full.map((p) => p.changes.length)).toEqual([2, 2, 1])
    expect(full.slice(0, -1).every((p) => p.hasMore)).toBe(true)
    const ids = full.flatMap((p) => p.changes.map((c) => (c as { task: { id: string } }).task.id))
    expect(ids.sort()).toEqual(created.map((c) => c.id).sort())
    const cursor = full.at(-1)!.cursor

    expect((await sync(owner, `?since=${encodeURIComponent(cursor)}`)).changes).toEqual([])

    const [a, b, c] = created as [Record<string, any>, Record<string, any>, Record<string, any>]
    await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${a.id}`, headers: owner.headers, payload: { title: 'a1' } })
    await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${a.id}`, headers: owner.headers, payload: { title: 'a2' } })
    await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${b.id}`, headers: owner.headers })
    await t.inject({ method: 'PATCH', url: `/api/${owner.id}/tasks/${c.id}/complete`, headers: owner.headers })
    const fresh = await t.createTask(owner, { title: 'new' })

    const delta = await sync(owner, `?since=${encodeURIComponent(cursor)}`)
    expect(delta.hasMore).toBe(false)
    expect(delta.changes).toEqual([
      { type: 'task', op: 'upsert', task: expect.objectContaining({ id: a.id, title: 'a2', version: 3 }) },
      { type: 'task', op: 'delete', id: b.id, deletedAt: expect.any(String) },
      { type: 'task', op: 'upsert', task: expect.objectContaining({ id: c.id, completed: true }) },
      { type: 'task', op: 'upsert', task: expect.objectContaining({ id: fresh.id }) },
    ])
    // A cursor stays valid after use.
    expect((await sync(owner, `?since=${encodeURIComponent(cursor)}`)).changes).toHaveLength(4)
    // Paged delta: one change per page, hasMore until the end.
    const paged = await syncAll(owner, cursor, 1)
    expect(paged.flatMap((p) => p.changes).length).toBeGreaterThanOrEqual(4)
    expect(paged.at(-1)!.hasMore).toBe(false)
  })

  it('logs each write once; an idempotent replay adds nothing', async () => {
    const owner = await t.signUp()
    const { cursor } = await sync(owner)
    const headers = { ...owner.headers, 'idempotency-key': 'once' }
    await t.inject({ method: 'POST', url: '/api/v1/tasks', headers, payload: { title: 'x' } })
    await t.inject({ method: 'POST', url: '/api/v1/tasks', headers, payload: { title: 'x' } })
    const { head, rows } = await changeLog(owner.id)
    expect(head).toBe(1)
    expect(rows.map((r) => [r.seq, r.op])).toEqual([[1, 'upsert']])
    expect((await sync(owner, `?since=${encodeURIComponent(cursor)}`)).changes).toHaveLength(1)
  })

  it('removes the change log with the account', async () => {
    const owner = await t.signUp()
    await t.createTask(owner, { title: 'x' })
    await t.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: owner.headers, payload: { password: PASSWORD } })
    expect(await changeLog(owner.id)).toEqual({ head: undefined, rows: [] })
  })

  it('answers 410 sync-expired once pruning dropped a tombstone the cursor had not seen', async () => {
    const owner = await t.signUp()
    const task = await t.createTask(owner, { title: 'doomed' })
    const { cursor } = await sync(owner)
    await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${task.id}`, headers: owner.headers })
    await new Promise((resolve) => setTimeout(resolve, 50))
    await syncQueries(t.database).prune(0.01 / 86_400) // retention of 10 ms
    const res = await t.inject({ url: `/api/v1/sync?since=${encodeURIComponent(cursor)}`, headers: owner.headers })
    expect(expectProblem(res, 410).type).toBe('urn:problem-type:taskbase:sync-expired')
    // Starting over works, and so does every cursor minted after the prune.
    const again = await sync(owner)
    expect((await sync(owner, `?since=${encodeURIComponent(again.cursor)}`)).changes).toEqual([])
  })

  it('answers 410, not 400, for a cursor signed with a secret the server no longer has, and the event stream too', async () => {
    const owner = await t.signUp()
    await t.createTask(owner, { title: 'before the rotation' })
    const { cursor } = await sync(owner)
    // The same database, restarted with another JWT_SECRET: the owner signs in again; the old cursor verified once.
    const rotated = await buildTestApp(target, { database: t.database, keys: testKeys({ secret: new TextEncoder().encode('another secret, also at least 32 bytes long') }) })
    try {
      const login = await rotated.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: owner.email, password: PASSWORD } })
      const headers = { authorization: `Bearer ${login.json().accessToken}` }
      const res = await rotated.inject({ url: `/api/v1/sync?since=${encodeURIComponent(cursor)}`, headers })
      expect(expectProblem(res, 410).type).toBe('urn:problem-type:taskbase:sync-expired')
      const stream = await rotated.inject({ url: '/api/v1/events', headers: { ...headers, 'last-event-id': cursor } })
      expect(expectProblem(stream, 410).type).toBe('urn:problem-type:taskbase:sync-expired')
      // A cursor edited by hand under the current secret is still a 400.
      const current = (await rotated.inject({ url: '/api/v1/sync', headers })).json().cursor as string
      const edited = `${current.slice(0, -2)}${current.endsWith('AA') ? 'BB' : 'AA'}`
      expectProblem(await rotated.inject({ url: `/api/v1/sync?since=${encodeURIComponent(edited)}`, headers }), 400)
    } finally {
      await rotated.app.close()
    }
  })

  it('answers 410 for a cursor older than SYNC_RETENTION_DAYS', async () => {
    const short = await buildTestApp(target, { database: t.database, env: { SYNC_RETENTION_DAYS: String(1 / 86_400) } })
    try {
      const owner = await short.signUp()
      const { cursor } = (await short.inject({ url: '/api/v1/sync', headers: owner.headers })).json()
      await new Promise((resolve) => setTimeout(resolve, 1200))
      expectProblem(await short.inject({ url: `/api/v1/sync?since=${encodeURIComponent(cursor)}`, headers: owner.headers }), 410)
    } finally {
      await short.app.close()
    }
  })
})

/**
 * Two devices of one user apply random creates, patches, completes, moves and deletes of tasks
 * (through both APIs) and of projects, each syncing at random moments; at the end each local copy must equal the server's list. On
 * PostgreSQL the writes of a round run concurrently, so transactions interleave and commit out of
 * order: a reader that skipped a change committing later would end with a wrong copy.
 */
describe.each(testDatabases)('sync property on $name', (target) => {
  let t: TestApp
  beforeAll(async () => { t = await buildTestApp(target) })
  afterAll(() => t.close())

  it('keeps every device an exact copy of the server under random concurrent writes', async () => {
    const owner = await t.signUp()
    let seed = 20261125
    const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!
    const known = new Set<string>()
    const projects = new Set<string>()

    type Device = { cursor?: string, copy: Map<string, unknown> }
    const devices: Device[] = [{ copy: new Map() }, { copy: new Map() }]
    const pull = async (device: Device) => {
      let page: Page
      do {
        const query = device.cursor ? `?limit=7&since=${encodeURIComponent(device.cursor)}` : '?limit=7'
        const res = await t.inject({ url: `/api/v1/sync${query}`, headers: owner.headers })
        if (res.statusCode !== 200) throw new Error(`sync: ${res.statusCode} ${res.body}`)
        page = res.json()
        for (const change of page.changes) {
          if (change.op === 'delete') device.copy.delete(`${change.type} ${change.id}`)
          else if (change.type === 'task') device.copy.set(`task ${change.task.id}`, change.task)
          else device.copy.set(`project ${change.project.id}`, change.project)
        }
        device.cursor = page.cursor
      } while (page.hasMore)
    }

    const write = async () => {
      const ids = [...known]
      const roll = random()
      const where = () => random() < 0.3 || projects.size === 0 ? {} : { projectId: pick([...projects]) }
      if (roll < 0.05) {
        const res = await t.inject({ method: 'POST', url: '/api/v1/projects', headers: owner.headers, payload: { name: `p${random()}` } })
        if (res.statusCode === 201) projects.add(res.json().id)
      } else if (roll < 0.07 && projects.size > 1) {
        const id = pick([...projects])
        const res = await t.inject({ method: 'DELETE', url: `/api/v1/projects/${id}`, headers: owner.headers })
        if (res.statusCode === 204) projects.delete(id)
      } else if (roll < 0.1 && projects.size > 1) {
        await t.inject({ method: 'POST', url: `/api/v1/projects/${pick([...projects])}/move`, headers: owner.headers, payload: {} })
      } else if (roll < 0.2 && ids.length > 1) {
        // A task goes elsewhere with its subtasks: another project, under another task, or last where it is.
        const to = pick([where(), { parentId: pick(ids) }, {}])
        await t.inject({ method: 'POST', url: `/api/v1/tasks/${pick(ids)}/move`, headers: owner.headers, payload: to })
      } else if (roll < 0.25 && ids.length > 0) {
        const res = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: owner.headers, payload: { title: `s${random()}`, parentId: pick(ids) } })
        if (res.statusCode === 201) known.add(res.json().id)
      } else if (roll < 0.35 || ids.length === 0) {
        const classic = random() < 0.3
        const res = classic
          ? await t.inject({ method: 'POST', url: `/api/${owner.id}/tasks`, headers: owner.headers, payload: { title: `c${random()}` } })
          : await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: owner.headers, payload: { title: `t${random()}`, tags: [pick(['a', 'b'])], ...where() } })
        if (res.statusCode === 201) known.add(res.json().id)
      } else if (roll < 0.65) {
        await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${pick(ids)}`, headers: owner.headers, payload: { title: `p${random()}`, priority: pick(['low', 'high']) } })
      } else if (roll < 0.8) {
        await t.inject({ method: 'PATCH', url: `/api/${owner.id}/tasks/${pick(ids)}/complete`, headers: owner.headers })
      } else if (roll < 0.9) {
        await t.inject({ method: 'PUT', url: `/api/${owner.id}/tasks/${pick(ids)}`, headers: owner.headers, payload: { title: `u${random()}`, completed: random() < 0.5 } })
      } else {
        const id = pick(ids)
        const res = await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${id}`, headers: owner.headers })
        if (res.statusCode === 204) known.delete(id)
      }
    }

    for (let round = 0; round < 50; round++) {
      // Several writes at once, and a device syncing in the middle of them.
      const concurrent = [write(), write(), write(), write()]
      if (random() < 0.5) concurrent.push(pull(pick(devices)))
      await Promise.all(concurrent)
    }
    for (const device of devices) await pull(device)

    const server = new Map<string, unknown>()
    let cursor: string | null = null
    do {
      const query: string = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : '?limit=100'
      const page = (await t.inject({ url: `/api/v1/tasks${query}`, headers: owner.headers })).json()
      for (const task of page.items) server.set(`task ${task.id}`, task)
      cursor = page.nextCursor
    } while (cursor)
    for (const archived of [false, true]) {
      const page = (await t.inject({ url: `/api/v1/projects?limit=100&archived=${archived}`, headers: owner.headers })).json()
      for (const project of page.items) server.set(`project ${project.id}`, project)
    }

    expect(server.size).toBeGreaterThan(5)
    expect([...server.keys()].filter((key) => key.startsWith('project')).length).toBeGreaterThan(0)
    expect([...server.values()].filter((task: any) => task.parentId).length).toBeGreaterThan(0)
    for (const device of devices) {
      expect(new Map([...device.copy].sort())).toEqual(new Map([...server].sort()))
    }
  })
})
