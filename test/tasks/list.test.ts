import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

type Task = Record<string, any>
type Query = Record<string, string | number | boolean | string[]>

const SORTS = ['createdAt', '-createdAt', 'dueAt', '-dueAt', 'priority', '-priority', 'title', '-title'] as const
type Sort = (typeof SORTS)[number]
const RANK: Record<string, number> = { none: 0, low: 1, medium: 2, high: 3 }

/** `?a=1&tag=x&tag=y`: arrays repeat the parameter. */
function queryString (query: Query): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) params.append(name, String(one))
  }
  const text = params.toString()
  return text ? `?${text}` : ''
}

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const ids = (tasks: Task[]) => tasks.map((task) => task.id as string)
const sorted = (values: string[]) => [...values].sort()

/**
 * The order the contract promises, computed here: the sort key, then id in the same direction;
 * tasks without dueAt last in both dueAt directions; titles compared ignoring case.
 */
function expectedOrder (tasks: Task[], sort: Sort): Task[] {
  const descending = sort.startsWith('-')
  const field = sort.replace(/^-/, '')
  const key = (task: Task): number | string => {
    switch (field) {
      case 'createdAt': return Date.parse(task.createdAt)
      case 'dueAt': return task.dueAt === null ? 0 : Date.parse(task.dueAt)
      case 'priority': return RANK[task.priority]!
      default: return (task.title as string).toLowerCase()
    }
  }
  const compare = (a: number | string, b: number | string) => a < b ? -1 : a > b ? 1 : 0
  return [...tasks].sort((a, b) => {
    if (field === 'dueAt' && (a.dueAt === null) !== (b.dueAt === null)) return a.dueAt === null ? 1 : -1
    const order = compare(key(a), key(b)) || compare(a.id, b.id)
    return descending ? -order : order
  })
}

describe.each(testDatabases)('GET /api/v1/tasks on $name', (target) => {
  let t: TestApp
  let alice: Account

  const list = (account: Account, query: Query = {}) =>
    t.inject({ url: `/api/v1/tasks${queryString(query)}`, headers: account.headers })

  /** Follows nextCursor to the end; every page is 200, non-empty and at most `limit` long. */
  async function allPages (account: Account, query: Query, limit: number): Promise<Task[]> {
    const seen: Task[] = []
    let cursor: string | null = null
    for (let pages = 0; ; pages++) {
      if (pages > 100) throw new Error('pagination does not end')
      const res = await list(account, { ...query, limit, ...(cursor ? { cursor } : {}) })
      expect(res.statusCode, res.body).toBe(200)
      const page = res.json()
      expect(page.items.length).toBeGreaterThan(0)
      expect(page.items.length).toBeLessThanOrEqual(limit)
      seen.push(...page.items)
      cursor = page.nextCursor
      if (cursor === null) return seen
      expect(page.items.length).toBe(limit)
    }
  }

  beforeAll(async () => {
    t = await buildTestApp(target)
    alice = await t.signUp()
    await t.createTask(alice, { title: 'So that a cursor would have something to skip' })
  })
  afterAll(() => t.close())

  describe('failures', () => {
    it('answers 401 without a token', async () => {
      expectProblem(await t.inject({ url: '/api/v1/tasks' }), 401)
    })

    it.each([
      ['limit=0', { limit: 0 }, 'query.limit'],
      ['limit=101', { limit: 101 }, 'query.limit'],
      ['limit=abc', { limit: 'abc' }, 'query.limit'],
      ['limit=2.5', { limit: '2.5' }, 'query.limit'],
      ['completed=maybe', { completed: 'maybe' }, 'query.completed'],
      ['priority=urgent', { priority: 'urgent' }, 'query.priority'],
      ['sort=bogus', { sort: 'bogus' }, 'query.sort'],
      ['sort=+title', { sort: '+title' }, 'query.sort'],
      ['dueBefore=tomorrow', { dueBefore: 'tomorrow' }, 'query.dueBefore'],
      ['dueAfter without a time zone', { dueAfter: '2030-01-01T10:00:00' }, 'query.dueAfter'],
      ['a tag of 51 characters', { tag: ['ok', 'x'.repeat(51)] }, 'query.tag.1'],
      ['a q of 201 characters', { q: 'x'.repeat(201) }, 'query.q'],
      ['an unknown parameter', { colour: 'red' }, 'query.colour'],
      ['a misspelt parameter', { sortBy: 'title' }, 'query.sortBy'],
      ['limit given twice', 'limit=1&limit=2', 'query.limit'],
      ['21 tags', { tag: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'query.tag'],
      // Values the schema lets through but PostgreSQL cannot take: still the client's mistake.
      ['a q with a NUL character', { q: 'a\u0000b' }, 'query.q'],
      ['a tag with a NUL character', { tag: 'a\u0000b' }, 'query.tag'],
      ['dueBefore in year 0000', { dueBefore: '0000-01-01T00:00:00Z' }, 'query.dueBefore'],
    ])('refuses %s with a 400 naming the parameter', async (_, query, path) => {
      const res = typeof query === 'string'
        ? await t.inject({ url: `/api/v1/tasks?${query}`, headers: alice.headers })
        : await list(alice, query)
      const problem = expectProblem(res, 400)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain(path)
    })

    it.each([
      ['plain text', 'garbage'],
      ['characters outside base64url', '!!!***'],
      ['base64 of something not JSON', Buffer.from('not json').toString('base64url')],
      ['a JSON object', cursorOf({ sort: '-createdAt', id: '00000000-0000-4000-8000-000000000000' })],
      ['an id that is not a UUID', cursorOf(['-createdAt', '2030-01-01T00:00:00.000Z', 'not-a-uuid'])],
      ['a null createdAt', cursorOf(['-createdAt', null, '00000000-0000-4000-8000-000000000000'])],
      ['a createdAt that is not a time', cursorOf(['-createdAt', 'yesterday', '00000000-0000-4000-8000-000000000000'])],
      ['an impossible date', cursorOf(['-createdAt', '2030-02-30T00:00:00.000Z', '00000000-0000-4000-8000-000000000000'])],
      ['a bare number as createdAt', cursorOf(['-createdAt', '1', '00000000-0000-4000-8000-000000000000'])],
    ])('refuses a cursor that is %s with a 400 naming query.cursor', async (_, cursor) => {
      const problem = expectProblem(await list(alice, { cursor }), 400)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain('query.cursor')
    })

    it.each([
      ['priority', cursorOf(['priority', 'urgent', '00000000-0000-4000-8000-000000000000'])],
      ['dueAt', cursorOf(['dueAt', 'soon', '00000000-0000-4000-8000-000000000000'])],
      ['title', cursorOf(['title', null, '00000000-0000-4000-8000-000000000000'])],
    ])('refuses a forged %s cursor with a value of the wrong kind', async (sort, cursor) => {
      const problem = expectProblem(await list(alice, { sort, cursor }), 400)
      expect(problem.errors.map((e: { path: string }) => e.path)).toContain('query.cursor')
    })
  })

  describe('filters', () => {
    let owner: Account
    const byTitle: Record<string, Task> = {}
    const idsOf = (...titles: string[]) => sorted(titles.map((title) => byTitle[title]!.id))
    const found = async (query: Query) => {
      const res = await list(owner, { ...query, limit: 100 })
      expect(res.statusCode, res.body).toBe(200)
      return sorted(ids(res.json().items))
    }

    beforeAll(async () => {
      owner = await t.signUp()
      const seed: Task[] = [
        { title: 'Buy milk', description: 'two litres', priority: 'high', tags: ['Home', 'errands'], dueAt: '2030-01-10T10:00:00Z' },
        { title: 'Write report', description: 'quarterly NUMBERS', priority: 'medium', tags: ['work'], dueAt: '2030-01-15T00:00:00Z' },
        { title: 'Call mom', priority: 'low', tags: ['home', 'Family'] },
        { title: '100% done', description: 'under_score', tags: ['work', 'URGENT'], dueAt: '2030-01-20T00:00:00Z' },
        { title: 'snake_case name', dueAt: '2030-01-10T10:00:00Z' },
        { title: 'C:\\temp', priority: 'high', tags: ['Work'] },
        { title: 'Plain', description: 'contains 100 percent', priority: 'medium', tags: ['home', 'work'], dueAt: '2030-01-12T12:00:00+02:00' },
      ]
      for (const payload of seed) byTitle[payload.title] = await t.createTask(owner, payload)
      const done = await t.inject({
        method: 'PATCH', url: `/api/v1/tasks/${byTitle['Write report']!.id}`, headers: owner.headers, payload: { completed: true },
      })
      expect(done.statusCode).toBe(200)
      byTitle['Write report'] = done.json()
    })

    it('returns fields as the contract says: UTC times, tags as written, version', async () => {
      const items: Task[] = (await list(owner, { limit: 100 })).json().items
      const plain = items.find((task) => task.title === 'Plain')!
      expect(plain).toEqual(byTitle.Plain)
      expect(plain).toMatchObject({ dueAt: '2030-01-12T10:00:00.000Z', tags: ['home', 'work'], priority: 'medium', version: 1 })
      expect(items.find((task) => task.title === 'Call mom')).toMatchObject({ priority: 'low', dueAt: null, tags: ['home', 'Family'] })
      expect(items.find((task) => task.title === 'snake_case name')).toMatchObject({ priority: 'none', tags: [] })
      expect(items.find((task) => task.title === 'Write report')).toMatchObject({ completed: true, version: 2 })
    })

    it('returns an empty last page when nothing matches', async () => {
      expect((await list(owner, { tag: 'nosuch' })).json()).toEqual({ items: [], nextCursor: null })
      expect((await list(owner, { q: 'nothing like this', sort: 'title' })).json()).toEqual({ items: [], nextCursor: null })
    })

    it('filters by completed', async () => {
      expect(await found({ completed: true })).toEqual(idsOf('Write report'))
      expect(await found({ completed: false })).toEqual(idsOf('Buy milk', 'Call mom', '100% done', 'snake_case name', 'C:\\temp', 'Plain'))
    })

    it('filters by priority', async () => {
      expect(await found({ priority: 'high' })).toEqual(idsOf('Buy milk', 'C:\\temp'))
      expect(await found({ priority: 'none' })).toEqual(idsOf('100% done', 'snake_case name'))
      expect(await found({ priority: 'low' })).toEqual(idsOf('Call mom'))
    })

    it('filters by tag ignoring case; repeated tags must all match', async () => {
      expect(await found({ tag: 'home' })).toEqual(idsOf('Buy milk', 'Call mom', 'Plain'))
      expect(await found({ tag: 'HOME' })).toEqual(idsOf('Buy milk', 'Call mom', 'Plain'))
      expect(await found({ tag: 'work' })).toEqual(idsOf('Write report', '100% done', 'C:\\temp', 'Plain'))
      expect(await found({ tag: 'urgent' })).toEqual(idsOf('100% done'))
      expect(await found({ tag: ['home', 'WORK'] })).toEqual(idsOf('Plain'))
      expect(await found({ tag: ['Work', 'urgent'] })).toEqual(idsOf('100% done'))
      expect(await found({ tag: ['home', 'family'] })).toEqual(idsOf('Call mom'))
      expect(await found({ tag: ['home', 'errands', 'work'] })).toEqual([])
      expect(await found({ tag: 'hom' })).toEqual([])
      expect(await found({ tag: 'nosuch' })).toEqual([])
    })

    it('searches title and description ignoring case', async () => {
      expect(await found({ q: 'MILK' })).toEqual(idsOf('Buy milk'))
      expect(await found({ q: 'numbers' })).toEqual(idsOf('Write report'))
      expect(await found({ q: 'Litres' })).toEqual(idsOf('Buy milk'))
      expect(await found({ q: '100' })).toEqual(idsOf('100% done', 'Plain'))
      expect(await found({ q: 'call mom' })).toEqual(idsOf('Call mom'))
      expect(await found({ q: 'nothing like this' })).toEqual([])
    })

    it('matches q within the title or within the description, not across the two', async () => {
      // 'Buy milk' / 'two litres', and 'Call mom' without a description.
      expect(await found({ q: 'milk two' })).toEqual([])
      expect(await found({ q: 'report quarterly' })).toEqual([])
      expect(await found({ q: 'mom ' })).toEqual([])
    })

    it('treats %, _ and \\ in q as literal characters', async () => {
      expect(await found({ q: '%' })).toEqual(idsOf('100% done'))
      expect(await found({ q: '0% d' })).toEqual(idsOf('100% done'))
      expect(await found({ q: '100%' })).toEqual(idsOf('100% done'))
      expect(await found({ q: '_' })).toEqual(idsOf('100% done', 'snake_case name'))
      expect(await found({ q: 'e_c' })).toEqual(idsOf('snake_case name'))
      expect(await found({ q: 'b_y' })).toEqual([])
      expect(await found({ q: '%milk%' })).toEqual([])
      expect(await found({ q: '\\' })).toEqual(idsOf('C:\\temp'))
      expect(await found({ q: 'C:\\t' })).toEqual(idsOf('C:\\temp'))
    })

    it('filters by due date, both bounds strict, tasks without one excluded', async () => {
      // Plain is due at exactly 2030-01-12T10:00:00Z.
      expect(await found({ dueBefore: '2030-01-12T10:00:00Z' })).toEqual(idsOf('Buy milk', 'snake_case name'))
      expect(await found({ dueAfter: '2030-01-12T10:00:00Z' })).toEqual(idsOf('Write report', '100% done'))
      expect(await found({ dueBefore: '2030-01-12T10:00:00.001Z' })).toEqual(idsOf('Buy milk', 'snake_case name', 'Plain'))
      expect(await found({ dueBefore: '2030-01-12T12:00:00+02:00' })).toEqual(idsOf('Buy milk', 'snake_case name'))
      expect(await found({ dueAfter: '2030-01-12T11:00:00+01:00' })).toEqual(idsOf('Write report', '100% done'))
      expect(await found({ dueAfter: '2030-01-10T10:00:00Z', dueBefore: '2030-01-20T00:00:00Z' })).toEqual(idsOf('Write report', 'Plain'))
      expect(await found({ dueAfter: '2030-01-20T00:00:00Z' })).toEqual([])
      expect(await found({ dueBefore: '2031-01-01T00:00:00Z' })).toEqual(idsOf('Buy milk', 'Write report', '100% done', 'snake_case name', 'Plain'))
    })

    it('combines filters with AND', async () => {
      expect(await found({ completed: false, tag: 'work' })).toEqual(idsOf('100% done', 'C:\\temp', 'Plain'))
      expect(await found({ completed: false, priority: 'medium', tag: 'work', q: 'percent' })).toEqual(idsOf('Plain'))
      expect(await found({ completed: true, tag: 'work', q: 'report', dueAfter: '2030-01-01T00:00:00Z' })).toEqual(idsOf('Write report'))
      expect(await found({ priority: 'high', tag: 'home' })).toEqual(idsOf('Buy milk'))
      expect(await found({ priority: 'high', q: 'temp', dueBefore: '2031-01-01T00:00:00Z' })).toEqual([])
      expect(await found({ completed: false, tag: 'home', dueBefore: '2030-01-13T00:00:00Z', q: 'l' })).toEqual(idsOf('Buy milk', 'Plain'))
    })

    it('pages a filtered, sorted list without skipping or repeating', async () => {
      const all: Task[] = (await list(owner, { limit: 100 })).json().items
      const work = all.filter((task) => task.completed === false && task.tags.some((tag: string) => tag.toLowerCase() === 'work'))
      for (const sort of ['title', '-priority', 'dueAt'] as const) {
        const paged = await allPages(owner, { completed: false, tag: 'WORK', sort }, 2)
        expect(ids(paged)).toEqual(ids(expectedOrder(work, sort)))
      }
    })
  })

  describe('sorts and keyset pagination', () => {
    let owner: Account
    let created: Task[]

    beforeAll(async () => {
      owner = await t.signUp()
      // Ties everywhere: equal titles that differ in case, equal priorities, equal due dates, no due date.
      const seed: Task[] = [
        { title: 'alpha', priority: 'high', dueAt: '2030-03-01T09:00:00Z', tags: ['even'] },
        { title: 'Bravo', priority: 'low' },
        { title: 'ALPHA', dueAt: '2030-03-01T09:00:00Z', tags: ['Even'] },
        { title: 'charlie', priority: 'high', dueAt: '2030-02-01T10:00:00+01:00' },
        { title: 'Alpha', priority: 'low', tags: ['even'] },
        { title: 'delta', priority: 'medium', dueAt: '2030-03-01T09:00:00Z' },
        { title: 'bravo', dueAt: '2030-01-01T00:00:00Z', tags: ['EVEN'] },
        { title: 'echo', priority: 'high' },
        { title: 'Charlie', priority: 'medium', dueAt: '2030-04-01T00:00:00Z', tags: ['even'] },
        { title: 'foxtrot', priority: 'low', dueAt: '2029-12-31T23:59:59.999Z' },
        { title: 'alpha', tags: ['even'] },
        { title: 'golf', priority: 'high', dueAt: '2030-03-01T09:00:00Z' },
      ]
      created = []
      for (const payload of seed) created.push(await t.createTask(owner, payload))
    })

    it('sorts by -createdAt when no sort is given', async () => {
      const page = (await list(owner, { limit: 100 })).json()
      expect(ids(page.items)).toEqual(ids(expectedOrder(created, '-createdAt')))
      expect(page.nextCursor).toBeNull()
      expect(ids(await allPages(owner, {}, 2))).toEqual(ids(expectedOrder(created, '-createdAt')))
    })

    describe.each(SORTS)('sort=%s', (sort) => {
      it('returns the whole list in the promised order', async () => {
        const page = (await list(owner, { sort, limit: 100 })).json()
        expect(page.items.map((task: Task) => task.title)).toEqual(expectedOrder(created, sort).map((task) => task.title))
        expect(ids(page.items)).toEqual(ids(expectedOrder(created, sort)))
        expect(page.nextCursor).toBeNull()
      })

      it.each([2, 3])('pages with limit=%i, never skipping or repeating a task', async (limit) => {
        const paged = await allPages(owner, { sort }, limit)
        expect(ids(paged)).toEqual(ids(expectedOrder(created, sort)))
      })

      it('pages a filtered list with limit=2', async () => {
        const even = created.filter((task) => task.tags.length > 0)
        expect(even.length).toBe(6)
        const paged = await allPages(owner, { sort, tag: 'even' }, 2)
        expect(ids(paged)).toEqual(ids(expectedOrder(even, sort)))
      })
    })

    it('refuses a cursor made for another sort, in either direction', async () => {
      const cursors: Partial<Record<Sort, string>> = {}
      for (const sort of SORTS) {
        const page = (await list(owner, { sort, limit: 1 })).json()
        expect(page.nextCursor).toEqual(expect.any(String))
        cursors[sort] = page.nextCursor
      }
      for (const [made, used] of [['title', 'priority'], ['-createdAt', 'createdAt'], ['dueAt', '-dueAt'], ['priority', 'title'], ['-title', 'title']] as const) {
        const res = await list(owner, { sort: used, cursor: cursors[made]! })
        const problem = expectProblem(res, 400)
        expect(problem.errors.map((e: { path: string }) => e.path)).toContain('query.cursor')
      }
      // The default sort is -createdAt: its cursor works without sort, and with sort=-createdAt.
      expect((await list(owner, { cursor: cursors['-createdAt']! })).statusCode).toBe(200)
      expectProblem(await list(owner, { sort: 'createdAt', cursor: cursors['-createdAt']! }), 400)
    })

    it('puts tasks without a due date last in both directions', async () => {
      for (const sort of ['dueAt', '-dueAt'] as const) {
        const items: Task[] = (await list(owner, { sort, limit: 100 })).json().items
        const firstNull = items.findIndex((task) => task.dueAt === null)
        expect(firstNull).toBe(created.filter((task) => task.dueAt !== null).length)
        expect(items.slice(firstNull).every((task) => task.dueAt === null)).toBe(true)
      }
    })

    it('orders priority none < low < medium < high, and titles ignoring case', async () => {
      const priorities = (await list(owner, { sort: 'priority', limit: 100 })).json().items.map((task: Task) => task.priority)
      expect([...new Set(priorities)]).toEqual(['none', 'low', 'medium', 'high'])
      const descending = (await list(owner, { sort: '-priority', limit: 100 })).json().items.map((task: Task) => task.priority)
      expect([...new Set(descending)]).toEqual(['high', 'medium', 'low', 'none'])
      const titles = (await list(owner, { sort: 'title', limit: 100 })).json().items.map((task: Task) => task.title.toLowerCase())
      expect(titles).toEqual(['alpha', 'alpha', 'alpha', 'alpha', 'bravo', 'bravo', 'charlie', 'charlie', 'delta', 'echo', 'foxtrot', 'golf'])
    })
  })

  describe('page size', () => {
    it('defaults to 20 and allows 1 to 100', async () => {
      const owner = await t.signUp()
      for (let i = 0; i < 21; i++) await t.createTask(owner, { title: `task ${String(i).padStart(2, '0')}` })
      const first = (await list(owner)).json()
      expect(first.items).toHaveLength(20)
      expect(first.nextCursor).toEqual(expect.any(String))
      const rest = (await list(owner, { cursor: first.nextCursor })).json()
      expect(rest.items).toHaveLength(1)
      expect(rest.nextCursor).toBeNull()
      const everything = (await list(owner, { limit: 100 })).json()
      expect(everything.items).toHaveLength(21)
      expect(everything.nextCursor).toBeNull()
      expect((await list(owner, { limit: 21 })).json().nextCursor).toBeNull()
      expect((await list(owner, { limit: 1 })).json().items).toHaveLength(1)
      expect(sorted(ids([...first.items, ...rest.items]))).toEqual(sorted(ids(everything.items)))
    })
  })

  describe('stable under inserts', () => {
    it.each([
      ['-createdAt', 3],
      ['title', 3],
    ] as const)('with sort=%s and limit=%i, every task present at the start appears exactly once', async (sort, limit) => {
      const owner = await t.signUp()
      const titles = ['kilo', 'Kilo', 'lima', 'mike', 'MIKE', 'november', 'oscar', 'Papa', 'quebec']
      const original: string[] = []
      for (const title of titles) original.push((await t.createTask(owner, { title })).id)
      const inserts = [['aaa', 'zzz'], ['kilo', 'Mike'], ['november', 'KILO', 'papa'], ['zulu', 'a'], ['oscar']]

      const seen: string[] = []
      let cursor: string | null = null
      let round = 0
      do {
        const res = await list(owner, { sort, limit, ...(cursor ? { cursor } : {}) })
        expect(res.statusCode, res.body).toBe(200)
        seen.push(...ids(res.json().items))
        cursor = res.json().nextCursor
        for (const title of inserts[round++] ?? []) await t.createTask(owner, { title })
      } while (cursor && round < 50)

      expect(cursor).toBeNull()
      expect(new Set(seen).size).toBe(seen.length) // nothing repeated, inserted tasks included
      for (const id of original) expect(seen.filter((s) => s === id)).toHaveLength(1)
    })
  })
})
