import { MAX_KEY_LENGTH } from '../../src/db/position.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'
import { api, COLORS, compareBytes, etagOf, expectPositionOrder, expectProblemAt, ids, MISSING_ID, PROBLEM, PROJECT_FIELDS, sameProblem, sorted, type Json } from '../resources.js'

describe.each(testDatabases)('/api/v1/projects on $name', (target) => {
  let t: TestApp
  let a: ReturnType<typeof api>
  let alice: Account
  let mallory: Account
  beforeAll(async () => {
    t = await buildTestApp(target)
    a = api(t)
    alice = await t.signUp()
    mallory = await t.signUp()
  })
  afterAll(() => t.close())

  const url = (id: string, rest = '') => `/api/v1/projects/${id}${rest}`

  describe('failures', () => {
    it('answers 401 without a token on every project route, and changes nothing', async () => {
      const project = await a.createProject(alice, { name: 'Guarded' })
      for (const headers of [{}, { authorization: 'Bearer not-a-token' }]) {
        for (const op of [
          { method: 'GET' as const, url: '/api/v1/projects' },
          { method: 'POST' as const, url: '/api/v1/projects', payload: { name: 'x' } },
          { method: 'GET' as const, url: url(project.id) },
          { method: 'PATCH' as const, url: url(project.id), payload: { name: 'pwned' } },
          { method: 'DELETE' as const, url: url(project.id) },
          { method: 'POST' as const, url: url(project.id, '/move'), payload: {} },
        ]) {
          expectProblem(await t.inject({ ...op, headers }), 401)
        }
      }
      expect(await a.readProject(alice, project.id)).toEqual(project)
    })

    describe('create', () => {
      let refused: Account
      beforeAll(async () => { refused = await t.signUp() })

      it.each([
        ['a missing name', {}, 'body.name'],
        ['an empty name', { name: '' }, 'body.name'],
        ['a blank name', { name: '  \t ' }, 'body.name'],
        ['a name of 201 characters', { name: 'x'.repeat(201) }, 'body.name'],
        ['a number as name', { name: 5 }, 'body.name'],
        ['a color not on the list', { name: 'ok', color: 'magenta' }, 'body.color'],
        ['a color in capitals', { name: 'ok', color: 'Red' }, 'body.color'],
        ['an empty color', { name: 'ok', color: '' }, 'body.color'],
        ['a number as color', { name: 'ok', color: 3 }, 'body.color'],
        ['gray spelt the American way', { name: 'ok', color: 'gray' }, 'body.color'],
        ['an unknown field', { name: 'ok', owner: 'me' }, 'body.owner'],
        ['a client-set id', { name: 'ok', id: MISSING_ID }, 'body.id'],
        ['a client-set position', { name: 'ok', position: 'a0' }, 'body.position'],
        ['a client-set version', { name: 'ok', version: 7 }, 'body.version'],
      ])('refuses %s with a 400 naming the field, and stores nothing', async (_, payload, path) => {
        const res = await t.inject({ method: 'POST', url: '/api/v1/projects', headers: refused.headers, payload })
        expectProblemAt(res, 400, path)
        expect(await a.allProjects(refused)).toEqual([])
      })
    })

    it.each([
      ['no field at all', {}, null],
      ['a blank name', { name: '   ' }, 'body.name'],
      ['a name of 201 characters', { name: 'y'.repeat(201) }, 'body.name'],
      ['a color not on the list', { color: 'black' }, 'body.color'],
      ['a string as archived', { archived: 'yes' }, 'body.archived'],
      ['a position', { position: 'a0' }, 'body.position'],
      ['an unknown field', { name: 'ok', owner: 'me' }, 'body.owner'],
      ['a version', { version: 9 }, 'body.version'],
      ['an id', { id: MISSING_ID }, 'body.id'],
    ])('refuses a PATCH with %s with a 400, and changes nothing', async (_, payload, path) => {
      const project = await a.createProject(alice, { name: 'Untouchable', color: 'teal' })
      const res = await t.inject({ method: 'PATCH', url: url(project.id), headers: alice.headers, payload })
      if (path) expectProblemAt(res, 400, path)
      else expectProblem(res, 400)
      expect(await a.readProject(alice, project.id)).toEqual(project)
    })

    it.each([
      ['limit=0', 'limit=0', 'query.limit'],
      ['limit=101', 'limit=101', 'query.limit'],
      ['limit=abc', 'limit=abc', 'query.limit'],
      ['archived=maybe', 'archived=maybe', 'query.archived'],
      ['a garbage cursor', 'cursor=garbage', 'query.cursor'],
      ['an unknown parameter', 'colour=red', 'query.colour'],
    ])('refuses a list with %s with a 400 naming the parameter', async (_, query, path) => {
      expectProblemAt(await t.inject({ url: `/api/v1/projects?${query}`, headers: alice.headers }), 400, path)
    })

    it('answers 400 naming path.id for an id that is not a UUID', async () => {
      for (const op of [
        { method: 'GET' as const, url: url('not-a-uuid') },
        { method: 'PATCH' as const, url: url('not-a-uuid'), payload: { name: 'x' } },
        { method: 'DELETE' as const, url: url('not-a-uuid') },
        { method: 'POST' as const, url: url('not-a-uuid', '/move'), payload: {} },
      ]) {
        expectProblemAt(await t.inject({ ...op, headers: alice.headers }), 400, 'path.id')
      }
    })

    it("answers 404 for another user's project on every route, exactly as for a missing one, and changes nothing", async () => {
      const project = await a.createProject(alice, { name: 'Private', color: 'red' })
      const task = await t.createTask(alice, { title: 'In the private project', projectId: project.id })
      const before = await a.snapshot(alice)
      const etag = etagOf(project)
      const attempts = (id: string) => [
        { method: 'GET' as const, url: url(id), headers: mallory.headers },
        { method: 'GET' as const, url: url(id), headers: { ...mallory.headers, 'if-none-match': etag } },
        { method: 'PATCH' as const, url: url(id), headers: mallory.headers, payload: { name: 'pwned', archived: true } },
        { method: 'PATCH' as const, url: url(id), headers: { ...mallory.headers, 'if-match': etag }, payload: { color: 'blue' } },
        { method: 'DELETE' as const, url: url(id), headers: mallory.headers },
        { method: 'DELETE' as const, url: url(id), headers: { ...mallory.headers, 'if-match': etag } },
        { method: 'POST' as const, url: url(id, '/move'), headers: mallory.headers, payload: {} },
      ]
      const foreign = attempts(project.id)
      const missing = attempts(MISSING_ID)
      for (let i = 0; i < foreign.length; i++) {
        const theirs = expectProblem(await t.inject(foreign[i]!), 404)
        const none = expectProblem(await t.inject(missing[i]!), 404)
        expect(sameProblem(theirs, project.id), `${foreign[i]!.method} ${i}`).toEqual(sameProblem(none, MISSING_ID))
      }
      for (const archived of [false, true]) {
        expect(ids(await a.listProjects(mallory, { archived }))).not.toContain(project.id)
      }
      expect(await a.snapshot(alice)).toEqual(before)
      expect(await a.readTask(alice, task.id)).toEqual(task)
    })

    it("answers 404 when a task is created in, or moved into, another user's project, and changes nothing", async () => {
      const project = await a.createProject(alice, { name: 'Not yours' })
      const own = await t.createTask(mallory, { title: 'Mallory’s' })
      const before = await a.snapshot(alice)
      const created = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: mallory.headers, payload: { title: 'Sneaky', projectId: project.id } })
      const createdMissing = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: mallory.headers, payload: { title: 'Sneaky', projectId: MISSING_ID } })
      expect(sameProblem(expectProblem(created, 404), project.id)).toEqual(sameProblem(expectProblem(createdMissing, 404), MISSING_ID))
      const moved = await a.moveTask(mallory, own.id, { projectId: project.id })
      const movedMissing = await a.moveTask(mallory, own.id, { projectId: MISSING_ID })
      expect(sameProblem(expectProblem(moved, 404), project.id)).toEqual(sameProblem(expectProblem(movedMissing, 404), MISSING_ID))
      expect(await a.readTask(mallory, own.id)).toEqual(own)
      expect(await a.snapshot(alice)).toEqual(before)
      expect((await a.listTasks(mallory)).filter((task) => task.title === 'Sneaky')).toEqual([])
    })

    it('answers 412 to a PATCH or DELETE with a stale If-Match, and changes nothing', async () => {
      const project = await a.createProject(alice, { name: 'Contended' })
      const stale = etagOf(project)
      const task = await t.createTask(alice, { title: 'Inside', projectId: project.id })
      const changed = await a.patchProject(alice, project.id, { name: 'Changed once' })
      for (const ifMatch of [stale, '"garbage"', `W/${etagOf(changed)}`]) {
        const patched = await t.inject({ method: 'PATCH', url: url(project.id), headers: { ...alice.headers, 'if-match': ifMatch }, payload: { name: 'Lost update', archived: true } })
        expect(expectProblem(patched, 412).type).toBe(PROBLEM.preconditionFailed)
        const deleted = await t.inject({ method: 'DELETE', url: url(project.id), headers: { ...alice.headers, 'if-match': ifMatch } })
        expect(expectProblem(deleted, 412).type).toBe(PROBLEM.preconditionFailed)
      }
      expect(await a.readProject(alice, project.id)).toEqual(changed)
      expect(await a.readTask(alice, task.id)).toEqual(task)
    })

    it('answers 409 project-limit-reached past PROJECTS_PER_USER_MAX, counting each user alone', async () => {
      const limited = await buildTestApp(target, { database: t.database, env: { PROJECTS_PER_USER_MAX: '3' } })
      try {
        const la = api(limited)
        const owner = await limited.signUp()
        const other = await limited.signUp()
        const made: Json[] = []
        for (let i = 0; i < 3; i++) made.push(await la.createProject(owner, { name: `p${i}` }))
        const res = await limited.inject({ method: 'POST', url: '/api/v1/projects', headers: owner.headers, payload: { name: 'one too many' } })
        expect(expectProblem(res, 409).type).toBe(PROBLEM.projectLimit)
        // An archived project still counts.
        await la.patchProject(owner, made[0]!.id, { archived: true })
        expectProblem(await limited.inject({ method: 'POST', url: '/api/v1/projects', headers: owner.headers, payload: { name: 'still too many' } }), 409)
        expect(ids(await la.allProjects(owner)).sort()).toEqual(ids(made).sort())
        // Another user has a quota of their own; a deleted project frees a place.
        await la.createProject(other, { name: 'other' })
        expect((await limited.inject({ method: 'DELETE', url: url(made[1]!.id), headers: owner.headers })).statusCode).toBe(204)
        await la.createProject(owner, { name: 'fits again' })
      } finally {
        await limited.app.close()
      }
    })

    describe('move', () => {
      let owner: Account
      let p: Json[]
      beforeAll(async () => {
        owner = await t.signUp()
        p = []
        for (const name of ['one', 'two', 'three', 'four']) p.push(await a.createProject(owner, { name }))
      })

      it('refuses beforeId coming before afterId, or the project itself as a neighbour, with a 400 naming the field, and moves nothing', async () => {
        const before = await a.listProjects(owner)
        // Reversed: afterId comes after beforeId.
        expectProblemAt(await a.moveProject(owner, p[3]!.id, { afterId: p[2]!.id, beforeId: p[1]!.id }), 400, 'body.beforeId')
        for (const field of ['beforeId', 'afterId']) {
          const itself = expectProblemAt(await a.moveProject(owner, p[3]!.id, { [field]: p[3]!.id }), 400, `body.${field}`)
          expect(itself.detail).toMatch(/itself/)
        }
        expect(await a.listProjects(owner)).toEqual(before)
      })

      it('puts the project right after afterId when another has landed between afterId and beforeId', async () => {
        const res = await a.moveProject(owner, p[3]!.id, { afterId: p[0]!.id, beforeId: p[2]!.id })
        expect(res.statusCode, res.body).toBe(200)
        const order = ids(await a.listProjects(owner))
        expect(order.indexOf(p[3]!.id)).toBe(order.indexOf(p[0]!.id) + 1)
      })

      it('refuses an unknown field and a malformed beforeId with a 400 naming it', async () => {
        expectProblemAt(await a.moveProject(owner, p[0]!.id, { position: 'a0' }), 400, 'body.position')
        expectProblemAt(await a.moveProject(owner, p[0]!.id, { beforeId: 'first' }), 400, 'body.beforeId')
        expectProblemAt(await a.moveProject(owner, p[0]!.id, { afterId: 42 }), 400, 'body.afterId')
      })

      it("answers 404 to a move next to another user's project, as next to a missing one, and moves nothing", async () => {
        const theirs = await a.createProject(mallory, { name: 'Mallory’s project' })
        const before = await a.listProjects(owner)
        for (const field of ['beforeId', 'afterId']) {
          const foreign = expectProblem(await a.moveProject(owner, p[0]!.id, { [field]: theirs.id }), 404)
          const missing = expectProblem(await a.moveProject(owner, p[0]!.id, { [field]: MISSING_ID }), 404)
          expect(sameProblem(foreign, theirs.id)).toEqual(sameProblem(missing, MISSING_ID))
        }
        expect(await a.listProjects(owner)).toEqual(before)
        expect(await a.readProject(mallory, theirs.id)).toEqual(theirs)
      })
    })
  })

  describe('create and read', () => {
    it('creates a project with a trimmed name and no color, at version 1, with Location and ETag', async () => {
      const owner = await t.signUp()
      const started = Date.now()
      const res = await t.inject({ method: 'POST', url: '/api/v1/projects', headers: owner.headers, payload: { name: '  Home  ' } })
      expect(res.statusCode).toBe(201)
      const project = res.json()
      expect(Object.keys(project).sort()).toEqual(PROJECT_FIELDS)
      expect(project).toMatchObject({ name: 'Home', color: null, archived: false, version: 1 })
      expect(project.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      expect(typeof project.position).toBe('string')
      expect(project.position.length).toBeGreaterThan(0)
      for (const field of ['createdAt', 'updatedAt']) {
        expect(project[field]).toMatch(/Z$/)
        expect(Math.abs(Date.parse(project[field]) - started)).toBeLessThan(60_000)
      }
      expect(res.headers.location).toBe(`/api/v1/projects/${project.id}`)
      expect(res.headers.etag).toBe(etagOf(project))

      const read = await t.inject({ url: url(project.id), headers: owner.headers })
      expect(read.statusCode).toBe(200)
      expect(read.json()).toEqual(project)
      expect(read.headers.etag).toBe(etagOf(project))
    })

    it('accepts every named color, null, and a name of 200 characters', async () => {
      const owner = await t.signUp()
      for (const color of COLORS) expect(await a.createProject(owner, { name: color, color })).toMatchObject({ name: color, color })
      expect(await a.createProject(owner, { name: 'none', color: null })).toMatchObject({ color: null })
      const long = 'n'.repeat(200)
      expect(await a.createProject(owner, { name: long })).toMatchObject({ name: long })
      expect((await a.listProjects(owner)).map((p) => p.color)).toEqual([...COLORS, null, null])
    })

    it('answers 304 to If-None-Match with the current ETag, and 200 once it changed', async () => {
      const project = await a.createProject(alice, { name: 'Cached' })
      const etag = etagOf(project)
      const cached = await t.inject({ url: url(project.id), headers: { ...alice.headers, 'if-none-match': etag } })
      expect(cached.statusCode).toBe(304)
      expect(cached.body).toBe('')
      const changed = await a.patchProject(alice, project.id, { name: 'Cached, renamed' })
      const fresh = await t.inject({ url: url(project.id), headers: { ...alice.headers, 'if-none-match': etag } })
      expect(fresh.statusCode).toBe(200)
      expect(fresh.json()).toEqual(changed)
      expect(fresh.headers.etag).toBe(etagOf(changed))
    })
  })

  describe('list', () => {
    it('lists active projects in creation order, each new one last, positions increasing in byte order', async () => {
      const owner = await t.signUp()
      const made: Json[] = []
      for (const name of ['zeta', 'Alpha', 'mid', 'beta', '0 first by name']) made.push(await a.createProject(owner, { name }))
      const page = (await t.inject({ url: '/api/v1/projects', headers: owner.headers })).json()
      expect(page).toEqual({ items: made, nextCursor: null })
      expectPositionOrder(page.items)
      for (let i = 1; i < made.length; i++) expect(compareBytes(made[i - 1]!.position, made[i]!.position)).toBeLessThan(0)
    })

    it('pages with limit, each project exactly once in order; 20 by default', async () => {
      const owner = await t.signUp()
      const made: Json[] = []
      for (let i = 0; i < 21; i++) made.push(await a.createProject(owner, { name: `p${i}` }))
      for (const limit of [1, 2, 5]) expect(ids(await a.listProjects(owner, {}, limit))).toEqual(ids(made))
      const first = (await t.inject({ url: '/api/v1/projects', headers: owner.headers })).json()
      expect(first.items).toHaveLength(20)
      expect(first.nextCursor).toEqual(expect.any(String))
      const rest = (await t.inject({ url: `/api/v1/projects?cursor=${encodeURIComponent(first.nextCursor)}`, headers: owner.headers })).json()
      expect(ids(rest.items)).toEqual([made[20]!.id])
      expect(rest.nextCursor).toBeNull()
      expect((await t.inject({ url: '/api/v1/projects?limit=100', headers: owner.headers })).json().items).toHaveLength(21)
    })

    it('lists archived projects only with archived=true, active ones by default and with archived=false', async () => {
      const owner = await t.signUp()
      const [one, two, three, four] = [
        await a.createProject(owner, { name: 'one' }), await a.createProject(owner, { name: 'two' }),
        await a.createProject(owner, { name: 'three' }), await a.createProject(owner, { name: 'four' }),
      ] as [Json, Json, Json, Json]
      const archivedTwo = await a.patchProject(owner, two.id, { archived: true })
      const archivedFour = await a.patchProject(owner, four.id, { archived: true })
      expect(ids(await a.listProjects(owner))).toEqual([one.id, three.id])
      expect(ids(await a.listProjects(owner, { archived: false }))).toEqual([one.id, three.id])
      expect(await a.listProjects(owner, { archived: true })).toEqual([archivedTwo, archivedFour])
      expect(ids(await a.listProjects(owner, { archived: true }, 1))).toEqual([two.id, four.id])
      await a.patchProject(owner, two.id, { archived: false })
      expect(ids(await a.listProjects(owner, { archived: true }))).toEqual([four.id])
      expect(ids(await a.listProjects(owner))).toEqual(expect.arrayContaining([one.id, two.id, three.id]))
    })
  })

  describe('update', () => {
    it('renames, recolors, archives and unarchives, each a new version and ETag', async () => {
      const project = await a.createProject(alice, { name: 'Work', color: 'blue' })
      const steps: Array<[Json, Json]> = [
        [{ name: '  Work stuff ' }, { name: 'Work stuff', color: 'blue', archived: false }],
        [{ color: 'green' }, { name: 'Work stuff', color: 'green' }],
        [{ color: null }, { color: null }],
        [{ archived: true }, { archived: true, name: 'Work stuff' }],
        [{ archived: false, name: 'Back', color: 'pink' }, { archived: false, name: 'Back', color: 'pink' }],
      ]
      let current = project
      for (const [payload, expected] of steps) {
        const res = await t.inject({ method: 'PATCH', url: url(project.id), headers: { ...alice.headers, 'if-match': etagOf(current) }, payload })
        expect(res.statusCode, res.body).toBe(200)
        const next = res.json()
        expect(next).toMatchObject({ ...expected, id: project.id, version: current.version + 1, createdAt: project.createdAt })
        // Renaming and recoloring leave the place in the list alone (archiving is not specified).
        if (!('archived' in payload)) expect(next.position).toBe(current.position)
        expect(Date.parse(next.updatedAt)).toBeGreaterThanOrEqual(Date.parse(current.updatedAt))
        expect(res.headers.etag).toBe(etagOf(next))
        expect(await a.readProject(alice, project.id)).toEqual(next)
        current = next
      }
      expect(current.version).toBe(6)
    })
  })

  describe('delete', () => {
    it('deletes the project with every task in it at every level, and leaves the inbox and other projects alone', async () => {
      const owner = await t.signUp()
      const doomed = await a.createProject(owner, { name: 'Doomed' })
      const kept = await a.createProject(owner, { name: 'Kept' })
      const deep = await a.chain(owner, 4, doomed.id, 'doomed')
      const sibling = await t.createTask(owner, { title: 'second top task', projectId: doomed.id })
      const child = await t.createTask(owner, { title: 'child of second', parentId: sibling.id })
      const inbox = await a.chain(owner, 2, null, 'inbox')
      const elsewhere = await a.chain(owner, 2, kept.id, 'kept')

      const res = await t.inject({ method: 'DELETE', url: url(doomed.id), headers: { ...owner.headers, 'if-match': etagOf(doomed) } })
      expect(res.statusCode).toBe(204)
      expect(res.body).toBe('')
      expectProblem(await t.inject({ url: url(doomed.id), headers: owner.headers }), 404)
      expectProblem(await t.inject({ method: 'DELETE', url: url(doomed.id), headers: owner.headers }), 404)
      for (const task of [...deep, sibling, child]) {
        expectProblem(await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: owner.headers }), 404)
      }
      expect(await a.allProjects(owner)).toEqual([kept])
      expect(sorted(ids(await a.listTasks(owner)))).toEqual(sorted(ids([...inbox, ...elsewhere])))
      expect(ids(await a.listTasks(owner, { projectId: kept.id }))).toHaveLength(2)
      // Classic list agrees.
      const classic = (await t.inject({ url: `/api/${owner.id}/tasks`, headers: owner.headers })).json()
      expect(sorted(classic.map((task: Json) => task.id))).toEqual(sorted(ids([...inbox, ...elsewhere])))
    })
  })

  describe('move', () => {
    it('moves a project before one, after one, between two adjacent ones, and last when given neither', async () => {
      const owner = await t.signUp()
      const [p1, p2, p3, p4] = [
        await a.createProject(owner, { name: '1' }), await a.createProject(owner, { name: '2' }),
        await a.createProject(owner, { name: '3' }), await a.createProject(owner, { name: '4' }),
      ] as [Json, Json, Json, Json]
      const order = async () => ids(await a.listProjects(owner))

      const res = await a.moveProject(owner, p4.id, { beforeId: p1.id })
      expect(res.statusCode, res.body).toBe(200)
      const moved = res.json()
      expect(moved).toMatchObject({ id: p4.id, name: '4' })
      expect(moved.version).toBeGreaterThan(p4.version)
      expect(res.headers.etag).toBe(etagOf(moved))
      expect(await a.readProject(owner, p4.id)).toEqual(moved)
      expect(await order()).toEqual([p4.id, p1.id, p2.id, p3.id])

      await a.movedProject(owner, p4.id, { afterId: p2.id })
      expect(await order()).toEqual([p1.id, p2.id, p4.id, p3.id])

      await a.movedProject(owner, p1.id, { afterId: p4.id, beforeId: p3.id })
      expect(await order()).toEqual([p2.id, p4.id, p1.id, p3.id])

      await a.movedProject(owner, p2.id, {})
      expect(await order()).toEqual([p4.id, p1.id, p3.id, p2.id])

      await a.movedProject(owner, p3.id, { afterId: p2.id }) // after the last one
      expect(await order()).toEqual([p4.id, p1.id, p2.id, p3.id])

      // Many moves into the same gap keep a strict order and paging exact.
      for (let i = 0; i < 8; i++) {
        await a.movedProject(owner, (i % 2 === 0 ? p3 : p2).id, { afterId: p4.id, beforeId: (await order())[1]! })
      }
      const final = await a.listProjects(owner)
      expectPositionOrder(final)
      expect(ids(await a.listProjects(owner, {}, 1))).toEqual(ids(final))
      expect(sorted(ids(final))).toEqual(sorted([p1.id, p2.id, p3.id, p4.id]))
      expect(final[0]!.id).toBe(p4.id)
    })

    it('makes a retried create with one Idempotency-Key one project, and refuses the key with another body', async () => {
      const owner = await t.signUp()
      const post = (payload: Json, key: string) => t.inject({ method: 'POST', url: '/api/v1/projects', headers: { ...owner.headers, 'idempotency-key': key }, payload })
      const answers = await Promise.all([0, 1, 2].map(() => post({ name: 'Groceries', color: 'green' }, 'retry-me')))
      for (const res of answers) expect(res.statusCode, res.body).toBe(201)
      expect(new Set(answers.map((res) => res.json().id)).size).toBe(1)
      expect(answers.filter((res) => res.headers['idempotent-replayed'] === 'true')).toHaveLength(2)
      expect((await a.listProjects(owner)).map((project) => project.name)).toEqual(['Groceries'])
      const reused = expectProblem(await post({ name: 'Something else' }, 'retry-me'), 422)
      expect(reused.type).toBe('urn:problem-type:taskbase:idempotency-key-reused')
      expect(await a.listProjects(owner)).toHaveLength(1)
    })

    it('keeps every position short, and every cursor accepted, after hundreds of moves into one spot', async () => {
      const owner = await t.signUp()
      const made: Json[] = []
      for (const name of ['a', 'b', 'c', 'd']) made.push(await a.createProject(owner, { name }))
      const [, target, x, y] = made
      for (let i = 0; i < 300; i++) await a.movedProject(owner, i % 2 === 0 ? x!.id : y!.id, { beforeId: target!.id })
      // One project a page: every cursor the list hands out is taken back.
      const listed = await a.listProjects(owner, {}, 1)
      expect(listed.map((project) => project.name)).toEqual(['a', 'c', 'd', 'b']) // d, moved last, right before b
      expect(Math.max(...listed.map((project) => project.position.length))).toBeLessThanOrEqual(MAX_KEY_LENGTH)
    })

    it.skipIf(target.name !== 'postgres')('keeps one total order when projects are created at the same time, each listed once', async () => {
      const owner = await t.signUp()
      const first = await a.createProject(owner, { name: 'first' })
      const made = await Promise.all(Array.from({ length: 6 }, (_, i) => a.createProject(owner, { name: `at once ${i}` })))
      const listed = await a.listProjects(owner)
      expectPositionOrder(listed) // (position, id): ties allowed, broken by id
      expect(listed[0]!.id).toBe(first.id)
      expect(sorted(ids(listed))).toEqual(sorted([first.id, ...ids(made)]))
      expect(ids(await a.listProjects(owner, {}, 1))).toEqual(ids(listed))
      // A later one still goes last, and a move between any two neighbours lands there.
      const last = await a.createProject(owner, { name: 'last' })
      expect(ids(await a.listProjects(owner)).at(-1)).toBe(last.id)
      await a.movedProject(owner, last.id, { afterId: listed[2]!.id, beforeId: listed[3]!.id })
      expect(ids(await a.listProjects(owner))).toEqual([...ids(listed.slice(0, 3)), last.id, ...ids(listed.slice(3))])
    })
  })
})
