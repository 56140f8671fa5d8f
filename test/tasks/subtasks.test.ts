import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'
import { api, compareBytes, etagOf, expectPositionOrder, expectProblemAt, ids, MISSING_ID, PROBLEM, queryString, sameProblem, sorted, type Json } from '../resources.js'

describe.each(testDatabases)('tasks in projects, and subtasks, on $name', (target) => {
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

  const post = (account: Account, payload: Json) => t.inject({ method: 'POST', url: '/api/v1/tasks', headers: account.headers, payload })

  describe('failures', () => {
    describe('create', () => {
      let refused: Account
      let project: Json
      let parent: Json
      beforeAll(async () => {
        refused = await t.signUp()
        project = await a.createProject(refused, { name: 'Refusals' })
        parent = await t.createTask(refused, { title: 'Parent', projectId: project.id })
      })

      it.each([
        ['a projectId that is not a UUID', { title: 'x', projectId: 'garbage' }, 'body.projectId'],
        ['projectId "inbox" (a filter value, not an id)', { title: 'x', projectId: 'inbox' }, 'body.projectId'],
        ['a number as projectId', { title: 'x', projectId: 5 }, 'body.projectId'],
        ['a parentId that is not a UUID', { title: 'x', parentId: 'none' }, 'body.parentId'],
        ['a client-set position', { title: 'x', position: 'a0' }, 'body.position'],
      ])('refuses %s with a 400 naming the field, and stores nothing', async (_, payload, path) => {
        const before = await a.snapshot(refused)
        expectProblemAt(await post(refused, payload), 400, path)
        expect(await a.snapshot(refused)).toEqual(before)
      })

      it("answers 400 naming body.projectId when projectId is not the parent's project, and stores nothing", async () => {
        const other = await a.createProject(refused, { name: 'Other' })
        const inboxParent = await t.createTask(refused, { title: 'Inbox parent' })
        const before = await a.snapshot(refused)
        for (const payload of [
          { title: 'x', parentId: parent.id, projectId: other.id },
          { title: 'x', parentId: parent.id, projectId: null },
          { title: 'x', parentId: inboxParent.id, projectId: project.id },
        ]) {
          expectProblemAt(await post(refused, payload), 400, 'body.projectId')
        }
        expect(await a.snapshot(refused)).toEqual(before)
      })

      it("answers 404 for a missing or another user's projectId or parentId, identically, and stores nothing", async () => {
        const theirProject = await a.createProject(mallory, { name: 'Mallory’s' })
        const theirTask = await t.createTask(mallory, { title: 'Mallory’s task', projectId: theirProject.id })
        const before = await a.snapshot(refused)
        const theirsBefore = await a.snapshot(mallory)
        const cases: Array<[Json, string, Json]> = [
          [{ title: 'x', projectId: theirProject.id }, theirProject.id, { title: 'x', projectId: MISSING_ID }],
          [{ title: 'x', parentId: theirTask.id }, theirTask.id, { title: 'x', parentId: MISSING_ID }],
          [{ title: 'x', parentId: theirTask.id, projectId: theirProject.id }, theirTask.id, { title: 'x', parentId: MISSING_ID, projectId: theirProject.id }],
        ]
        for (const [foreign, foreignId, missing] of cases) {
          const theirs = expectProblem(await post(refused, foreign), 404)
          const none = expectProblem(await post(refused, missing), 404)
          expect(sameProblem(theirs, foreignId)).toEqual(sameProblem(none, MISSING_ID))
        }
        expect(await a.snapshot(refused)).toEqual(before)
        expect(await a.snapshot(mallory)).toEqual(theirsBefore)
      })

      it('answers 409 too-deep naming body.parentId for a fifth level; four levels are fine', async () => {
        for (const projectId of [null, project.id]) {
          const levels = await a.chain(refused, 4, projectId)
          expect(levels.map((task) => task.parentId)).toEqual([null, levels[0]!.id, levels[1]!.id, levels[2]!.id])
          expect(levels.every((task) => task.projectId === projectId)).toBe(true)
          const before = await a.snapshot(refused)
          const problem = expectProblemAt(await post(refused, { title: 'level 5', parentId: levels[3]!.id }), 409, 'body.parentId')
          expect(problem.type).toBe(PROBLEM.tooDeep)
          expect(await a.snapshot(refused)).toEqual(before)
          // A fourth level beside the existing one is still fine.
          expect((await post(refused, { title: 'another level 4', parentId: levels[2]!.id })).statusCode).toBe(201)
        }
      })
    })

    it.each([
      ['projectId', { projectId: null }],
      ['projectId', { title: 'renamed', projectId: MISSING_ID }],
      ['parentId', { parentId: null }],
      ['parentId', { parentId: MISSING_ID }],
      ['position', { position: 'a0' }],
    ])('refuses %s in a PATCH with a 400 naming it, and changes nothing', async (field, payload) => {
      const project = await a.createProject(alice, { name: 'Patch refusals' })
      const parent = await t.createTask(alice, { title: 'parent', projectId: project.id })
      const child = await t.createTask(alice, { title: 'child', parentId: parent.id })
      expectProblemAt(await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${child.id}`, headers: alice.headers, payload }), 400, `body.${field}`)
      expect(await a.readTask(alice, child.id)).toEqual(child)
    })

    it.each([
      ['projectId=garbage', 'projectId=garbage', 'query.projectId'],
      ['projectId=none', 'projectId=none', 'query.projectId'],
      ['parentId=garbage', 'parentId=garbage', 'query.parentId'],
      ['parentId=inbox', 'parentId=inbox', 'query.parentId'],
      ['sort=-position', 'sort=-position', 'query.sort'],
      ['sort=position with a garbage cursor', 'sort=position&cursor=garbage', 'query.cursor'],
    ])('refuses a list with %s with a 400 naming the parameter', async (_, query, path) => {
      expectProblemAt(await t.inject({ url: `/api/v1/tasks?${query}`, headers: alice.headers }), 400, path)
    })

    it('refuses a cursor of sort=position with another sort, and the other way round', async () => {
      const owner = await t.signUp()
      for (let i = 0; i < 3; i++) await t.createTask(owner, { title: `t${i}` })
      const cursorOf = async (query: string) => {
        const page = (await t.inject({ url: `/api/v1/tasks?limit=1&${query}`, headers: owner.headers })).json()
        expect(page.nextCursor).toEqual(expect.any(String))
        return encodeURIComponent(page.nextCursor)
      }
      const position = await cursorOf('sort=position')
      for (const sort of ['title', 'createdAt', '-createdAt', 'priority', 'dueAt']) {
        const other = await cursorOf(`sort=${sort}`)
        expectProblemAt(await t.inject({ url: `/api/v1/tasks?sort=${sort}&cursor=${position}`, headers: owner.headers }), 400, 'query.cursor')
        expectProblemAt(await t.inject({ url: `/api/v1/tasks?sort=position&cursor=${other}`, headers: owner.headers }), 400, 'query.cursor')
      }
      expectProblemAt(await t.inject({ url: `/api/v1/tasks?cursor=${position}`, headers: owner.headers }), 400, 'query.cursor')
      expect((await t.inject({ url: `/api/v1/tasks?sort=position&cursor=${position}`, headers: owner.headers })).statusCode).toBe(200)
    })

    it("shows nothing of another user's project or task through the projectId and parentId filters", async () => {
      const project = await a.createProject(alice, { name: 'Alice only' })
      const parent = await t.createTask(alice, { title: 'Alice parent', projectId: project.id })
      await t.createTask(alice, { title: 'Alice child', parentId: parent.id })
      for (const query of [{ projectId: project.id }, { parentId: parent.id }, { projectId: project.id, sort: 'position' }] as Array<Record<string, string>>) {
        const res = await t.inject({ url: `/api/v1/tasks${queryString(query)}`, headers: mallory.headers })
        if (res.statusCode === 200) expect(res.json().items).toEqual([])
        else expectProblem(res, 404)
      }
    })
  })

  describe('create', () => {
    it('creates top-level tasks in the inbox or a project, and subtasks that take their parent’s project', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Garden' })

      const inboxRes = await post(owner, { title: 'In the inbox' })
      expect(inboxRes.statusCode).toBe(201)
      const inbox = inboxRes.json()
      expect(inbox).toMatchObject({ projectId: null, parentId: null, version: 1 })
      expect(typeof inbox.position).toBe('string')
      expect(inboxRes.headers.etag).toBe(etagOf(inbox))
      expect(inboxRes.headers.location).toBe(`/api/v1/tasks/${inbox.id}`)

      const top = await t.createTask(owner, { title: 'Plant tomatoes', projectId: project.id })
      expect(top).toMatchObject({ projectId: project.id, parentId: null, version: 1 })
      const sub = await t.createTask(owner, { title: 'Buy seeds', parentId: top.id })
      expect(sub).toMatchObject({ projectId: project.id, parentId: top.id, version: 1 })
      const explicit = await t.createTask(owner, { title: 'Dig', parentId: top.id, projectId: project.id })
      expect(explicit).toMatchObject({ projectId: project.id, parentId: top.id })
      const inboxSub = await t.createTask(owner, { title: 'Inbox child', parentId: inbox.id, projectId: null })
      expect(inboxSub).toMatchObject({ projectId: null, parentId: inbox.id })
      const inboxSubImplicit = await t.createTask(owner, { title: 'Inbox child 2', parentId: inbox.id })
      expect(inboxSubImplicit).toMatchObject({ projectId: null, parentId: inbox.id })

      for (const task of [inbox, top, sub, explicit, inboxSub, inboxSubImplicit]) {
        expect(await a.readTask(owner, task.id)).toEqual(task)
      }
      // The parent is not changed by gaining a child.
      expect(await a.readTask(owner, top.id)).toMatchObject({ version: 1 })
    })

    it('places a new task last among its siblings, whatever was created elsewhere in between', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Order' })
      const other = await a.createProject(owner, { name: 'Elsewhere' })
      const p1 = await t.createTask(owner, { title: 'p1', projectId: project.id })
      const p1a = await t.createTask(owner, { title: 'p1a', parentId: p1.id })
      const i1 = await t.createTask(owner, { title: 'i1' })
      const p2 = await t.createTask(owner, { title: 'p2', projectId: project.id })
      await t.createTask(owner, { title: 'o1', projectId: other.id })
      const p1b = await t.createTask(owner, { title: 'p1b', parentId: p1.id })
      const i2 = await t.createTask(owner, { title: 'i2' })
      const p3 = await t.createTask(owner, { title: 'p3', projectId: project.id })
      const p1c = await t.createTask(owner, { title: 'p1c', parentId: p1.id })
      // A task moved away leaves room; new ones still go last.
      await a.movedTask(owner, p2.id, { projectId: other.id })
      const p4 = await t.createTask(owner, { title: 'p4', projectId: project.id })

      expect(await a.siblings(owner, project.id, null)).toEqual(ids([p1, p3, p4]))
      expect(await a.siblings(owner, project.id, p1.id)).toEqual(ids([p1a, p1b, p1c]))
      expect(await a.siblings(owner, null, null)).toEqual(ids([i1, i2]))
      for (const [x, y] of [[p1, p3], [p3, p4], [p1a, p1b], [p1b, p1c], [i1, i2]] as Array<[Json, Json]>) {
        expect(compareBytes(x.position, y.position)).toBeLessThan(0)
      }
    })
  })

  describe('created at the same time', () => {
    it.skipIf(target.name !== 'postgres')('keeps one total order among siblings created at once, each listed once', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Busy' })
      const parent = await t.createTask(owner, { title: 'parent', projectId: project.id })
      const first = await t.createTask(owner, { title: 'first', parentId: parent.id })
      const made = await Promise.all(Array.from({ length: 6 }, (_, i) => t.createTask(owner, { title: `at once ${i}`, parentId: parent.id })))
      const listed = await a.listTasks(owner, { sort: 'position', parentId: parent.id })
      expectPositionOrder(listed)
      expect(listed[0]!.id).toBe(first.id)
      expect(sorted(ids(listed))).toEqual(sorted([first.id, ...ids(made)]))
      expect(ids(await a.listTasks(owner, { sort: 'position', parentId: parent.id }, 1))).toEqual(ids(listed))
      const last = await t.createTask(owner, { title: 'last', parentId: parent.id })
      expect((await a.siblings(owner, project.id, parent.id)).at(-1)).toBe(last.id)
    })
  })

  describe('list', () => {
    let owner: Account
    const tasks: Record<string, Json> = {}
    let project: Json
    let second: Json
    const idsOf = (...names: string[]) => sorted(names.map((name) => tasks[name]!.id))
    const found = async (query: Json) => sorted(ids(await a.listTasks(owner, query)))

    beforeAll(async () => {
      owner = await t.signUp()
      project = await a.createProject(owner, { name: 'P' })
      second = await a.createProject(owner, { name: 'Q' })
      const add = async (name: string, payload: Json) => { tasks[name] = await t.createTask(owner, { title: name, ...payload }) }
      await add('p1', { projectId: project.id })
      await add('i1', {})
      await add('p1a', { parentId: tasks.p1!.id })
      await add('q1', { projectId: second.id })
      await add('p1a1', { parentId: tasks.p1a!.id })
      await add('p1b', { parentId: tasks.p1!.id })
      await add('i1a', { parentId: tasks.i1!.id })
      await add('p2', { projectId: project.id })
      await add('i2', {})
      await add('p1a1x', { parentId: tasks.p1a1!.id })
      tasks.p1b = await a.patchTask(owner, tasks.p1b!.id, { completed: true })
    })

    it('filters by projectId: every level of that project, or of the inbox', async () => {
      expect(await found({ projectId: project.id })).toEqual(idsOf('p1', 'p1a', 'p1a1', 'p1a1x', 'p1b', 'p2'))
      expect(await found({ projectId: second.id })).toEqual(idsOf('q1'))
      expect(await found({ projectId: 'inbox' })).toEqual(idsOf('i1', 'i1a', 'i2'))
      expect(await found({ projectId: MISSING_ID }).catch(() => [])).toEqual([])
    })

    it('filters by parentId: direct children only, or the top level with none', async () => {
      expect(await found({ parentId: tasks.p1!.id })).toEqual(idsOf('p1a', 'p1b'))
      expect(await found({ parentId: tasks.p1a!.id })).toEqual(idsOf('p1a1'))
      expect(await found({ parentId: tasks.p1a1x!.id })).toEqual([])
      expect(await found({ parentId: 'none' })).toEqual(idsOf('p1', 'i1', 'q1', 'p2', 'i2'))
    })

    it('combines projectId, parentId and the other filters', async () => {
      expect(await found({ projectId: project.id, parentId: 'none' })).toEqual(idsOf('p1', 'p2'))
      expect(await found({ projectId: 'inbox', parentId: 'none' })).toEqual(idsOf('i1', 'i2'))
      expect(await found({ projectId: 'inbox', parentId: tasks.i1!.id })).toEqual(idsOf('i1a'))
      expect(await found({ projectId: second.id, parentId: tasks.p1!.id })).toEqual([])
      expect(await found({ projectId: project.id, completed: true })).toEqual(idsOf('p1b'))
      expect(await found({ projectId: project.id, completed: false, q: 'p1a' })).toEqual(idsOf('p1a', 'p1a1', 'p1a1x'))
    })

    it('sorts by position in byte order, then id, and pages that order exactly', async () => {
      const everything = await a.listTasks(owner, { sort: 'position' })
      expect(sorted(ids(everything))).toEqual(sorted(Object.values(tasks).map((task) => task.id)))
      expectPositionOrder(everything)
      for (const limit of [1, 2, 3]) {
        expect(ids(await a.listTasks(owner, { sort: 'position' }, limit))).toEqual(ids(everything))
      }
      const top = await a.listTasks(owner, { sort: 'position', projectId: project.id, parentId: 'none' }, 1)
      expect(ids(top)).toEqual([tasks.p1!.id, tasks.p2!.id])
      expect(await a.siblings(owner, project.id, tasks.p1!.id)).toEqual([tasks.p1a!.id, tasks.p1b!.id])
      expect(ids(await a.listTasks(owner, { sort: 'position', projectId: project.id }, 2))).toEqual(
        ids(everything.filter((task) => task.projectId === project.id)))
    })

    it('lists every task with projectId, parentId and position, as GET reads it', async () => {
      for (const task of await a.listTasks(owner)) {
        expect(task).toHaveProperty('projectId')
        expect(task).toHaveProperty('parentId')
        expect(typeof task.position).toBe('string')
        expect(task).toEqual(await a.readTask(owner, task.id))
      }
    })
  })

  describe('completion', () => {
    it('completes every open descendant with the task, and reopening reopens only that task', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Completion' })
      const [top, root, child, grandchild] = await a.chain(owner, 4, project.id) as [Json, Json, Json, Json]
      const doneEarlier = await a.patchTask(owner, (await t.createTask(owner, { title: 'done earlier', parentId: root.id })).id, { completed: true })
      const sibling = await t.createTask(owner, { title: 'sibling of root', parentId: top.id })
      const started = Date.now()

      const res = await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${root.id}`, headers: owner.headers, payload: { completed: true } })
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json()).toMatchObject({ id: root.id, completed: true, version: root.version + 1 })
      for (const task of [child, grandchild]) {
        const now = await a.readTask(owner, task.id)
        expect(now).toMatchObject({ completed: true, version: task.version + 1, title: task.title })
        expect(Math.abs(Date.parse(now.completedAt) - started)).toBeLessThan(60_000)
      }
      // Already completed: untouched. Ancestors and siblings: untouched.
      expect(await a.readTask(owner, doneEarlier.id)).toEqual(doneEarlier)
      expect(await a.readTask(owner, top.id)).toEqual(top)
      expect(await a.readTask(owner, sibling.id)).toEqual(sibling)

      const completedChild = await a.readTask(owner, child.id)
      const completedGrandchild = await a.readTask(owner, grandchild.id)
      const reopened = await a.patchTask(owner, root.id, { completed: false })
      expect(reopened).toMatchObject({ completed: false, completedAt: null, version: root.version + 2 })
      expect(await a.readTask(owner, child.id)).toEqual(completedChild)
      expect(await a.readTask(owner, grandchild.id)).toEqual(completedGrandchild)

      // Completing the top completes the reopened root too, and leaves the already completed alone.
      await a.patchTask(owner, top.id, { completed: true })
      for (const task of [top, root, sibling]) expect(await a.readTask(owner, task.id)).toMatchObject({ completed: true })
      expect(await a.readTask(owner, child.id)).toEqual(completedChild)
    })

    it('completes the descendants through the classic toggle and PUT too, and PUT keeps the task in its place', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Classic' })
      const [root, child, grandchild] = await a.chain(owner, 3, project.id) as [Json, Json, Json]
      const toggle = await t.inject({ method: 'PATCH', url: `/api/${owner.id}/tasks/${root.id}/complete`, headers: owner.headers })
      expect(toggle.statusCode).toBe(200)
      expect(toggle.json()).toMatchObject({ completed: true })
      for (const task of [child, grandchild]) expect(await a.readTask(owner, task.id)).toMatchObject({ completed: true, version: task.version + 1 })

      const untoggle = await t.inject({ method: 'PATCH', url: `/api/${owner.id}/tasks/${root.id}/complete`, headers: owner.headers })
      expect(untoggle.json()).toMatchObject({ completed: false })
      for (const task of [child, grandchild]) expect(await a.readTask(owner, task.id)).toMatchObject({ completed: true, version: task.version + 1 })

      // Reopen the child; a classic PUT of the root with completed: true closes it again.
      await a.patchTask(owner, child.id, { completed: false })
      const before = await a.readTask(owner, child.id)
      const put = await t.inject({ method: 'PUT', url: `/api/${owner.id}/tasks/${root.id}`, headers: owner.headers, payload: { title: 'Replaced', completed: true } })
      expect(put.statusCode, put.body).toBe(200)
      expect(await a.readTask(owner, child.id)).toMatchObject({ completed: true, version: before.version + 1 })
      const replaced = await a.readTask(owner, root.id)
      expect(replaced).toMatchObject({ title: 'Replaced', completed: true, projectId: project.id, parentId: null, position: root.position })
      // A classic PUT of a subtask keeps it under its parent.
      const putChild = await t.inject({ method: 'PUT', url: `/api/${owner.id}/tasks/${grandchild.id}`, headers: owner.headers, payload: { title: 'Leaf' } })
      expect(putChild.statusCode).toBe(200)
      expect(await a.readTask(owner, grandchild.id)).toMatchObject({ title: 'Leaf', completed: false, projectId: project.id, parentId: child.id, position: grandchild.position })
    })
  })

  describe('delete', () => {
    it('deletes a task with all its descendants, leaving a tombstone in sync for each', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Pruning', color: 'yellow' })
      const [root, child, grandchild, leaf] = await a.chain(owner, 4, project.id) as [Json, Json, Json, Json]
      const child2 = await t.createTask(owner, { title: 'second child', parentId: root.id })
      const sibling = await t.createTask(owner, { title: 'sibling', projectId: project.id })
      const siblingChild = await t.createTask(owner, { title: 'sibling child', parentId: sibling.id })
      const { cursor } = await a.syncAll(owner)

      const current = await a.readTask(owner, root.id)
      const res = await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${root.id}`, headers: { ...owner.headers, 'if-match': etagOf(current) } })
      expect(res.statusCode).toBe(204)
      const gone = [root, child, grandchild, leaf, child2]
      for (const task of gone) expectProblem(await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: owner.headers }), 404)
      expect(sorted(ids(await a.listTasks(owner)))).toEqual(sorted(ids([sibling, siblingChild])))
      expect(await a.readProject(owner, project.id)).toEqual(project)

      const { changes } = await a.syncAll(owner, cursor)
      const deletes = changes.filter((c) => c.op === 'delete')
      for (const change of deletes) {
        expect(change).toEqual({ type: 'task', op: 'delete', id: expect.any(String), deletedAt: expect.any(String) })
      }
      expect(sorted(deletes.map((c) => c.id))).toEqual(sorted(ids(gone)))
      // Nothing deleted comes back as an upsert after its tombstone.
      const upserted = changes.filter((c) => c.op === 'upsert').map((c) => c.task?.id ?? c.project?.id)
      for (const task of gone) expect(upserted).not.toContain(task.id)
    })

    it('deletes the descendants through the classic DELETE too', async () => {
      const owner = await t.signUp()
      const [root, child, grandchild] = await a.chain(owner, 3, null) as [Json, Json, Json]
      const { cursor } = await a.syncAll(owner)
      const res = await t.inject({ method: 'DELETE', url: `/api/${owner.id}/tasks/${root.id}`, headers: owner.headers })
      expect(res.statusCode).toBeLessThan(300)
      expect(await a.listTasks(owner)).toEqual([])
      const { changes } = await a.syncAll(owner, cursor)
      expect(sorted(changes.filter((c) => c.op === 'delete').map((c) => c.id))).toEqual(sorted(ids([root, child, grandchild])))
    })

    it('answers 412 to a stale If-Match, and the subtree stays', async () => {
      const owner = await t.signUp()
      const [root, child] = await a.chain(owner, 2, null) as [Json, Json]
      const renamed = await a.patchTask(owner, root.id, { title: 'renamed' })
      const res = await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${root.id}`, headers: { ...owner.headers, 'if-match': etagOf(root) } })
      expect(expectProblem(res, 412).type).toBe(PROBLEM.preconditionFailed)
      expect(await a.readTask(owner, root.id)).toEqual(renamed)
      expect(await a.readTask(owner, child.id)).toEqual(child)
    })
  })

  describe('the classic routes', () => {
    it('list every task of every project and level; a classic create lands in the inbox, top level, last', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Mixed' })
      const inProject = await a.chain(owner, 4, project.id)
      const inInbox = await a.chain(owner, 2, null)
      const res = await t.inject({ method: 'POST', url: `/api/${owner.id}/tasks`, headers: owner.headers, payload: { title: 'Classic' } })
      expect(res.statusCode).toBe(201)
      const classic = res.json()
      expect(await a.readTask(owner, classic.id)).toMatchObject({ projectId: null, parentId: null })
      expect(await a.siblings(owner, null, null)).toEqual([inInbox[0]!.id, classic.id])

      const listed = (await t.inject({ url: `/api/${owner.id}/tasks`, headers: owner.headers })).json()
      expect(sorted(listed.map((task: Json) => task.id))).toEqual(sorted([...ids(inProject), ...ids(inInbox), classic.id]))
      // The classic shape gains no project or parent: only what its front ends show (recurrence, reminders).
      expect(Object.keys(listed[0]).sort()).toEqual(['completed', 'created_at', 'description', 'due_date', 'id', 'priority', 'recurrence', 'reminders', 'tags', 'title', 'updated_at', 'user_id'])
    })
  })
})
