import { MAX_KEY_LENGTH } from '../../src/db/position.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'
import { api, compareBytes, etagOf, expectPositionOrder, expectProblemAt, ids, MISSING_ID, pathsOf, PROBLEM, sameProblem, sorted, type Json } from '../resources.js'

describe.each(testDatabases)('POST /api/v1/tasks/{id}/move on $name', (target) => {
  let t: TestApp
  let a: ReturnType<typeof api>
  let mallory: Account
  beforeAll(async () => {
    t = await buildTestApp(target)
    a = api(t)
    mallory = await t.signUp()
  })
  afterAll(() => t.close())

  /**
   * A fresh user with two projects:
   *   P: p1 (p1a (p1a1 (p1a1x)), p1b), p2, p3      Q: q1 (q1a), q2      inbox: i1 (i1a), i2
   */
  async function world () {
    const owner = await t.signUp()
    // Colored: a project without a color is covered in projects.test.ts and sync.test.ts.
    const P = await a.createProject(owner, { name: 'P', color: 'red' })
    const Q = await a.createProject(owner, { name: 'Q', color: 'blue' })
    const x: Record<string, Json> = {}
    const add = async (name: string, payload: Json) => { x[name] = await t.createTask(owner, { title: name, ...payload }) }
    await add('p1', { projectId: P.id })
    await add('p1a', { parentId: x.p1!.id })
    await add('p1a1', { parentId: x.p1a!.id })
    await add('p1a1x', { parentId: x.p1a1!.id })
    await add('p1b', { parentId: x.p1!.id })
    await add('p2', { projectId: P.id })
    await add('p3', { projectId: P.id })
    await add('q1', { projectId: Q.id })
    await add('q1a', { parentId: x.q1!.id })
    await add('q2', { projectId: Q.id })
    await add('i1', {})
    await add('i1a', { parentId: x.i1!.id })
    await add('i2', {})
    const name = new Map(Object.entries(x).map(([key, task]) => [task.id as string, key]))
    /** A sibling group in manual order, by name. */
    const group = async (projectId: string | null, parentId: string | null) =>
      (await a.siblings(owner, projectId, parentId)).map((id) => name.get(id) ?? id)
    const read = (key: string) => a.readTask(owner, x[key]!.id)
    return { owner, P, Q, x, group, read }
  }

  describe('failures', () => {
    it('answers 401 without a token, and moves nothing', async () => {
      const { owner, x, read } = await world()
      const before = await read('p2')
      for (const headers of [{}, { authorization: 'Bearer not-a-token' }]) {
        expectProblem(await t.inject({ method: 'POST', url: `/api/v1/tasks/${x.p2!.id}/move`, headers, payload: { parentId: null } }), 401)
      }
      expect(await a.readTask(owner, x.p2!.id)).toEqual(before)
    })

    it.each([
      ['an unknown field', { title: 'x' }, 'body.title'],
      ['a position', { position: 'a0' }, 'body.position'],
      ['a projectId that is not a UUID', { projectId: 'garbage' }, 'body.projectId'],
      ['projectId "inbox"', { projectId: 'inbox' }, 'body.projectId'],
      ['parentId "none"', { parentId: 'none' }, 'body.parentId'],
      ['a beforeId that is not a UUID', { beforeId: 'first' }, 'body.beforeId'],
      ['a number as afterId', { afterId: 5 }, 'body.afterId'],
      ['a null beforeId', { beforeId: null }, 'body.beforeId'],
    ])('refuses %s with a 400 naming the field, and moves nothing', async (_, payload, path) => {
      const { owner, x } = await world()
      const before = await a.snapshot(owner)
      expectProblemAt(await a.moveTask(owner, x.p1a!.id, payload), 400, path)
      expect(await a.snapshot(owner)).toEqual(before)
    })

    it("answers 404 for another user's task, project, parent, beforeId or afterId, as for missing ones, and moves nothing", async () => {
      const { owner, x } = await world()
      const theirProject = await a.createProject(mallory, { name: 'Theirs' })
      const theirTop = await t.createTask(mallory, { title: 'their top', projectId: theirProject.id })
      const theirs = await a.snapshot(mallory)
      const before = await a.snapshot(owner)

      // Their task, moved by the owner; then the owner's task, moved next to / into theirs.
      const moveTheirs = expectProblem(await a.moveTask(owner, theirTop.id, { parentId: null }), 404)
      const moveMissing = expectProblem(await a.moveTask(owner, MISSING_ID, { parentId: null }), 404)
      expect(sameProblem(moveTheirs, theirTop.id)).toEqual(sameProblem(moveMissing, MISSING_ID))
      const cases: Array<[Json, string, Json]> = [
        [{ projectId: theirProject.id }, theirProject.id, { projectId: MISSING_ID }],
        [{ parentId: theirTop.id }, theirTop.id, { parentId: MISSING_ID }],
        [{ beforeId: theirTop.id }, theirTop.id, { beforeId: MISSING_ID }],
        [{ afterId: theirTop.id }, theirTop.id, { afterId: MISSING_ID }],
        [{ projectId: theirProject.id, beforeId: theirTop.id }, theirTop.id, { projectId: theirProject.id, beforeId: MISSING_ID }],
        [{ afterId: x.p1!.id, beforeId: theirTop.id }, theirTop.id, { afterId: x.p1!.id, beforeId: MISSING_ID }],
      ]
      for (const [foreign, foreignId, missing] of cases) {
        const problem = expectProblem(await a.moveTask(owner, x.p2!.id, foreign), 404)
        const none = expectProblem(await a.moveTask(owner, x.p2!.id, missing), 404)
        expect(sameProblem(problem, foreignId), JSON.stringify(foreign)).toEqual(sameProblem(none, MISSING_ID))
      }
      expect(await a.snapshot(owner)).toEqual(before)
      expect(await a.snapshot(mallory)).toEqual(theirs)
    })

    it('answers 409 cycle naming body.parentId for the task itself or one of its descendants, and moves nothing', async () => {
      const { owner, x } = await world()
      const before = await a.snapshot(owner)
      const { cursor } = await a.syncAll(owner)
      for (const [task, parent] of [['p1', 'p1'], ['p1', 'p1a'], ['p1a', 'p1a1'], ['p1', 'p1a1x'], ['p1a', 'p1a1x'], ['i1', 'i1a']]) {
        const res = await a.moveTask(owner, x[task!]!.id, { parentId: x[parent!]!.id })
        expect(expectProblemAt(res, 409, 'body.parentId').type, `${task} under ${parent}`).toBe(PROBLEM.cycle)
      }
      expect(await a.snapshot(owner)).toEqual(before)
      expect((await a.syncAll(owner, cursor)).changes).toEqual([]) // nothing logged either
    })

    it('answers 409 too-deep naming body.parentId past four levels, counting the moved subtree, and moves nothing', async () => {
      const { owner, x } = await world()
      const before = await a.snapshot(owner)
      const { cursor } = await a.syncAll(owner)
      for (const [task, parent] of [
        ['p2', 'p1a1x'], // a single task under level 4
        ['i1', 'p1a1'], // two levels under level 3
        ['q1', 'p1a1'], // two levels under level 3, across projects
        ['p1a', 'q1a'], // three levels under level 2
        ['p1', 'q1'], // four levels under level 1
      ]) {
        const res = await a.moveTask(owner, x[task!]!.id, { parentId: x[parent!]!.id })
        expect(expectProblemAt(res, 409, 'body.parentId').type, `${task} under ${parent}`).toBe(PROBLEM.tooDeep)
      }
      expect(await a.snapshot(owner)).toEqual(before)
      expect((await a.syncAll(owner, cursor)).changes).toEqual([])
    })

    it('answers 400 naming the field for a beforeId or afterId that is not a sibling at the destination, and moves nothing', async () => {
      const { owner, x, Q } = await world()
      const before = await a.snapshot(owner)
      const { cursor } = await a.syncAll(owner)
      const cases: Array<[string, Json, string]> = [
        ['p2', { beforeId: x.q1!.id }, 'body.beforeId'], // a top-level task of another project
        ['p2', { afterId: x.p1a!.id }, 'body.afterId'], // a child of a sibling
        ['p2', { afterId: x.i1!.id }, 'body.afterId'], // the inbox
        ['p2', { projectId: Q.id, beforeId: x.p3!.id }, 'body.beforeId'], // a sibling at the source, not at the destination
        ['p1b', { parentId: null, afterId: x.p1a!.id }, 'body.afterId'], // a sibling under the old parent
        ['p2', { parentId: x.q1!.id, beforeId: x.q2!.id }, 'body.beforeId'], // a sibling of the new parent, not its child
        ['i2', { parentId: x.i1!.id, afterId: x.p1b!.id }, 'body.afterId'],
      ]
      for (const [task, payload, path] of cases) {
        expectProblemAt(await a.moveTask(owner, x[task]!.id, payload), 400, path)
      }
      expect(await a.snapshot(owner)).toEqual(before)
      expect((await a.syncAll(owner, cursor)).changes).toEqual([])
    })

    it('answers 400 when beforeId comes before afterId, or both name one task, and moves nothing', async () => {
      const { owner, x, group } = await world()
      const extra = await t.createTask(owner, { title: 'p4', projectId: x.p1!.projectId })
      expect(await group(x.p1!.projectId, null)).toEqual(['p1', 'p2', 'p3', extra.id])
      const before = await a.snapshot(owner)
      for (const payload of [
        { afterId: x.p3!.id, beforeId: x.p2!.id }, // reversed
        { afterId: x.p2!.id, beforeId: x.p2!.id }, // one task on both sides
      ]) {
        expect(pathsOf(expectProblem(await a.moveTask(owner, extra.id, payload), 400))).toEqual(['body.beforeId'])
      }
      expect(await a.snapshot(owner)).toEqual(before)
    })

    it('puts the task right after afterId when another task has landed between afterId and beforeId', async () => {
      const { owner, x, group } = await world()
      const extra = await t.createTask(owner, { title: 'p4', projectId: x.p1!.projectId })
      // The client saw p1 and p2 side by side; p2 is between p1 and p3 now, as if it had landed there since.
      const moved = await a.moveTask(owner, extra.id, { afterId: x.p1!.id, beforeId: x.p3!.id })
      expect(moved.statusCode, moved.body).toBe(200)
      expect(await group(x.p1!.projectId, null)).toEqual(['p1', extra.id, 'p2', 'p3'])
    })

    it('answers 412 to a stale If-Match and moves nothing; the current ETag moves', async () => {
      const { owner, x, group } = await world()
      const stale = etagOf(x.p3!)
      const renamed = await a.patchTask(owner, x.p3!.id, { title: 'p3 renamed' })
      const before = await a.snapshot(owner)
      for (const ifMatch of [stale, '"nope"', `W/${etagOf(renamed)}`]) {
        const res = await a.moveTask(owner, x.p3!.id, { beforeId: x.p1!.id }, { 'if-match': ifMatch })
        expect(expectProblem(res, 412).type).toBe(PROBLEM.preconditionFailed)
      }
      expect(await a.snapshot(owner)).toEqual(before)
      const res = await a.moveTask(owner, x.p3!.id, { beforeId: x.p1!.id }, { 'if-match': etagOf(renamed) })
      expect(res.statusCode, res.body).toBe(200)
      expect(await group(x.p1!.projectId, null)).toEqual(['p3', 'p1', 'p2'])
    })
  })

  describe('within one sibling group', () => {
    it('lands before beforeId, after afterId, between two adjacent ones, and last with neither', async () => {
      const { owner, x, group, read } = await world()
      const P = x.p1!.projectId
      const original = await read('p3')

      const res = await a.moveTask(owner, x.p3!.id, { beforeId: x.p1!.id })
      expect(res.statusCode, res.body).toBe(200)
      const moved = res.json()
      expect(res.headers.etag).toBe(etagOf(moved))
      expect(moved.version).toBeGreaterThan(original.version)
      expect(moved).toMatchObject({ id: original.id, title: 'p3', projectId: P, parentId: null, completed: false, createdAt: original.createdAt })
      expect(compareBytes(moved.position, x.p1!.position)).toBeLessThan(0)
      expect(await read('p3')).toEqual(moved)
      expect(await group(P, null)).toEqual(['p3', 'p1', 'p2'])

      await a.movedTask(owner, x.p3!.id, { afterId: x.p1!.id })
      expect(await group(P, null)).toEqual(['p1', 'p3', 'p2'])
      await a.movedTask(owner, x.p1!.id, { afterId: x.p3!.id, beforeId: x.p2!.id })
      expect(await group(P, null)).toEqual(['p3', 'p1', 'p2'])
      await a.movedTask(owner, x.p3!.id, {})
      expect(await group(P, null)).toEqual(['p1', 'p2', 'p3'])
      await a.movedTask(owner, x.p1!.id, { afterId: x.p3!.id })
      expect(await group(P, null)).toEqual(['p2', 'p3', 'p1'])

      // Subtasks reorder the same way, and a moved parent keeps its children.
      await a.movedTask(owner, x.p1b!.id, { beforeId: x.p1a!.id })
      expect(await group(P, x.p1!.id)).toEqual(['p1b', 'p1a'])
      expect(await group(P, x.p1a!.id)).toEqual(['p1a1'])
      expect(await group(P, x.p1a1!.id)).toEqual(['p1a1x'])
      // Everything else is where it was.
      expect(await group(null, null)).toEqual(['i1', 'i2'])
      expect(await group(x.q1!.projectId, null)).toEqual(['q1', 'q2'])
      expectPositionOrder(await a.listTasks(owner, { sort: 'position' }))
    })

    it('keeps a strict order through many moves into one gap, and pages it exactly', async () => {
      const { owner, x, group } = await world()
      const P = x.p1!.projectId
      // Alternately squeeze p3 and p2 in right after p1: the gap is split again and again.
      for (let i = 0; i < 20; i++) {
        const [mover, next] = i % 2 === 0 ? ['p3', 'p2'] : ['p2', 'p3']
        const order = await group(P, null)
        await a.movedTask(owner, x[mover]!.id, { afterId: x.p1!.id, beforeId: x[order[1]!]!.id })
        expect(await group(P, null)).toEqual(['p1', mover, next])
      }
      const top = await a.listTasks(owner, { sort: 'position', projectId: P, parentId: 'none' })
      expectPositionOrder(top)
      expect(ids(await a.listTasks(owner, { sort: 'position', projectId: P, parentId: 'none' }, 1))).toEqual(ids(top))
    })

    it('keeps the parent when projectId is given unchanged and parentId omitted', async () => {
      const { owner, x, group } = await world()
      const P = x.p1!.projectId
      const moved = await a.movedTask(owner, x.p1b!.id, { projectId: P, beforeId: x.p1a!.id })
      expect(moved).toMatchObject({ projectId: P, parentId: x.p1!.id })
      expect(await group(P, x.p1!.id)).toEqual(['p1b', 'p1a'])
    })
  })

  describe('to another place', () => {
    it('moves a subtree to the top level of another project, every descendant following', async () => {
      const { owner, x, group, read, Q, P } = await world()
      const before = await Promise.all(['p1a', 'p1a1', 'p1a1x'].map(read))
      const moved = await a.movedTask(owner, x.p1a!.id, { projectId: Q.id })
      expect(moved).toMatchObject({ id: x.p1a!.id, projectId: Q.id, parentId: null })
      expect(await group(Q.id, null)).toEqual(['q1', 'q2', 'p1a'])
      const [p1a1, p1a1x] = [await read('p1a1'), await read('p1a1x')]
      expect(p1a1).toMatchObject({ projectId: Q.id, parentId: x.p1a!.id })
      expect(p1a1x).toMatchObject({ projectId: Q.id, parentId: x.p1a1!.id })
      // Each task whose JSON changed has a new version (and so a new ETag).
      expect(p1a1.version).toBeGreaterThan(before[1]!.version)
      expect(p1a1x.version).toBeGreaterThan(before[2]!.version)
      expect(sorted(ids(await a.listTasks(owner, { projectId: Q.id })))).toEqual(sorted(ids([x.q1!, x.q1a!, x.q2!, x.p1a!, x.p1a1!, x.p1a1x!])))
      expect(sorted(ids(await a.listTasks(owner, { projectId: P.id })))).toEqual(sorted(ids([x.p1!, x.p1b!, x.p2!, x.p3!])))
      expect(await group(P.id, x.p1!.id)).toEqual(['p1b'])
    })

    it('puts the task in its new parent’s project when only parentId is given, before a given child', async () => {
      const { owner, x, group, read, Q } = await world()
      const moved = await a.movedTask(owner, x.p1a!.id, { parentId: x.q1!.id, beforeId: x.q1a!.id })
      expect(moved).toMatchObject({ projectId: Q.id, parentId: x.q1!.id })
      expect(await group(Q.id, x.q1!.id)).toEqual(['p1a', 'q1a'])
      expect(await read('p1a1')).toMatchObject({ projectId: Q.id, parentId: x.p1a!.id })
      expect(await read('p1a1x')).toMatchObject({ projectId: Q.id, parentId: x.p1a1!.id })
      // And with both given, consistent with each other, after a given child.
      const inbox = await a.movedTask(owner, x.p2!.id, { projectId: null, parentId: x.i1!.id, afterId: x.i1a!.id })
      expect(inbox).toMatchObject({ projectId: null, parentId: x.i1!.id })
      expect(await group(null, x.i1!.id)).toEqual(['i1a', 'p2'])
    })

    it('moves to the inbox with projectId null, landing at its top level', async () => {
      const { owner, x, group, read } = await world()
      const moved = await a.movedTask(owner, x.p1a!.id, { projectId: null, afterId: x.i1!.id })
      expect(moved).toMatchObject({ projectId: null, parentId: null })
      expect(await group(null, null)).toEqual(['i1', 'p1a', 'i2'])
      expect(await read('p1a1')).toMatchObject({ projectId: null, parentId: x.p1a!.id })
      expect(await read('p1a1x')).toMatchObject({ projectId: null, parentId: x.p1a1!.id })
      expect(ids(await a.listTasks(owner, { projectId: 'inbox', parentId: 'none', sort: 'position' }))).toEqual(ids([x.i1!, x.p1a!, x.i2!]))
      // And out again: from the inbox into a project.
      const back = await a.movedTask(owner, x.i1!.id, { projectId: x.p1!.projectId, beforeId: x.p2!.id })
      expect(back).toMatchObject({ projectId: x.p1!.projectId, parentId: null })
      expect(await read('i1a')).toMatchObject({ projectId: x.p1!.projectId, parentId: x.i1!.id })
      expect(await group(x.p1!.projectId, null)).toEqual(['p1', 'i1', 'p2', 'p3'])
    })

    it('moves to the top level of its own project with parentId null', async () => {
      const { owner, x, group, read, P } = await world()
      const moved = await a.movedTask(owner, x.p1a1!.id, { parentId: null, afterId: x.p1!.id })
      expect(moved).toMatchObject({ projectId: P.id, parentId: null })
      expect(await group(P.id, null)).toEqual(['p1', 'p1a1', 'p2', 'p3'])
      expect(await read('p1a1x')).toMatchObject({ projectId: P.id, parentId: x.p1a1!.id })
      expect(await group(P.id, x.p1a!.id)).toEqual([])
    })

    it('fits a subtree exactly at the depth limit: three levels under a top-level task', async () => {
      const { owner, x, read, group, Q } = await world()
      const moved = await a.movedTask(owner, x.p1a!.id, { parentId: x.q2!.id })
      expect(moved).toMatchObject({ projectId: Q.id, parentId: x.q2!.id })
      expect(await read('p1a1x')).toMatchObject({ projectId: Q.id, parentId: x.p1a1!.id })
      expect(await group(Q.id, x.q2!.id)).toEqual(['p1a'])
      // A whole four-level tree moves to the inbox's top level.
      const tree = await a.movedTask(owner, x.q2!.id, { projectId: null })
      expect(tree).toMatchObject({ projectId: null, parentId: null })
      expect(await read('p1a1x')).toMatchObject({ projectId: null })
    })

    it('moves a completed task with its completed subtree unchanged but for the place', async () => {
      const { owner, x, read, Q } = await world()
      await a.patchTask(owner, x.p1a!.id, { completed: true })
      const [p1a, p1a1] = [await read('p1a'), await read('p1a1')]
      const moved = await a.movedTask(owner, x.p1a!.id, { projectId: Q.id })
      expect(moved).toMatchObject({ completed: true, completedAt: p1a.completedAt, title: 'p1a' })
      expect(await read('p1a1')).toMatchObject({ completed: true, completedAt: p1a1.completedAt, projectId: Q.id })
    })
  })

  describe('positions', () => {
    it('keeps every position short, and every cursor accepted, after hundreds of moves into one spot', async () => {
      const owner = await t.signUp()
      for (const title of ['a', 'b', 'c', 'd', 'e']) await t.createTask(owner, { title })
      const [, , target, x, y] = await a.siblings(owner, null, null)
      // Two tasks moved alternately just before one sibling: without a bound, a key grew by a
      // character every 5 moves (402 characters after 2,000) and the list's own cursors were refused.
      for (let i = 0; i < 300; i++) await a.movedTask(owner, i % 2 === 0 ? x! : y!, { beforeId: target! })
      const order = await a.siblings(owner, null, null)
      // y, moved last, sits right before the target, and x right before y.
      expect(order.slice(order.indexOf(target!) - 2, order.indexOf(target!) + 1)).toEqual([x, y, target])
      // One task a page: every cursor the list hands out is taken back.
      const listed = await a.listTasks(owner, { sort: 'position', projectId: 'inbox', parentId: 'none' }, 1)
      expect(ids(listed)).toEqual(order)
      expect(Math.max(...listed.map((task) => task.position.length))).toBeLessThanOrEqual(MAX_KEY_LENGTH)
    })
  })

  describe('under concurrency', () => {
    it('lets every move into one gap naming both of its sides succeed, each landing right after afterId', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Drag and drop' })
      for (const title of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) await t.createTask(owner, { title, projectId: project.id })
      const order = await a.siblings(owner, project.id, null)
      const [first, second] = order
      const movers = order.slice(-4)
      // Every client saw `first` and `second` side by side and drops its task between them. All but the
      // first move to land find others already in the gap, whatever the timing (PostgreSQL: at once).
      const results = await Promise.all(movers.map((id) => a.moveTask(owner, id, { afterId: first, beforeId: second })))
      for (const res of results) expect(res.statusCode, res.body).toBe(200)
      const after = await a.siblings(owner, project.id, null)
      expect(after[0]).toBe(first)
      expect(sorted(after.slice(1, 5))).toEqual(sorted(movers))
      expect(after.slice(5)).toEqual(order.filter((id) => id !== first && !movers.includes(id)))
    })

    it.skipIf(target.name !== 'postgres')('lets two concurrent moves into the same gap both succeed, leaving one total order', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Race' })
      const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
      const tasks: Json[] = []
      for (const title of names) tasks.push(await t.createTask(owner, { title, projectId: project.id }))
      for (let round = 0; round < 8; round++) {
        const order = await a.siblings(owner, project.id, null)
        // Two tasks from the end squeeze into the gap right after the first one.
        const movers = order.slice(-2)
        const gapEnd = order[1]!
        // One side of the gap, the other, or both (as drag-and-drop clients send): once the first has
        // landed, the gap's two sides are no longer adjacent, and the second still goes in.
        const payloads = [
          [{ afterId: order[0] }, { afterId: order[0] }],
          [{ beforeId: gapEnd }, { beforeId: gapEnd }],
          [{ afterId: order[0] }, { beforeId: gapEnd }],
          [{ afterId: order[0], beforeId: gapEnd }, { afterId: order[0], beforeId: gapEnd }],
        ][round % 4]!
        const results = await Promise.all(movers.map((id, i) => a.moveTask(owner, id, payloads[i]!)))
        for (const res of results) expect(res.statusCode, res.body).toBe(200)

        const listed = await a.listTasks(owner, { sort: 'position', projectId: project.id, parentId: 'none' })
        expectPositionOrder(listed) // (position, id): ties allowed, broken by id
        const after = ids(listed)
        expect(sorted(after)).toEqual(sorted(ids(tasks)))
        expect(after[0]).toBe(order[0])
        expect(sorted(after.slice(1, 3))).toEqual(sorted(movers))
        expect(after.slice(3)).toEqual(order.filter((id) => !movers.includes(id) && id !== order[0]))
        // The same order page by page, one task at a time.
        expect(ids(await a.listTasks(owner, { sort: 'position', projectId: project.id, parentId: 'none' }, 1))).toEqual(after)
        // Each moved task reads as the list shows it.
        for (const task of listed.slice(1, 3)) expect(await a.readTask(owner, task.id)).toEqual(task)
      }
      // A later move relative to a tied pair still lands where asked.
      const order = await a.siblings(owner, project.id, null)
      await a.movedTask(owner, order.at(-1)!, { afterId: order[1]!, beforeId: order[2]! })
      const final = await a.siblings(owner, project.id, null)
      expect(final.slice(0, 4)).toEqual([order[0], order[1], order.at(-1), order[2]])
      expect(sorted(final)).toEqual(sorted(ids(tasks)))
    })

    it.skipIf(target.name !== 'postgres')('lets concurrent subtree moves across projects leave every task exactly once, at a legal depth', async () => {
      const owner = await t.signUp()
      const P = await a.createProject(owner, { name: 'P' })
      const Q = await a.createProject(owner, { name: 'Q' })
      const left = await a.chain(owner, 2, P.id, 'left')
      const right = await a.chain(owner, 2, Q.id, 'right')
      // Each tries to move under the other at the same time: at most one may win, no cycle may form.
      const [one, two] = await Promise.all([
        a.moveTask(owner, left[0]!.id, { parentId: right[1]!.id }),
        a.moveTask(owner, right[0]!.id, { parentId: left[1]!.id }),
      ])
      expect([one.statusCode, two.statusCode].filter((s) => s === 200).length).toBeLessThanOrEqual(1)
      for (const res of [one, two]) expect([200, 409]).toContain(res.statusCode)
      const all = await a.listTasks(owner)
      expect(all).toHaveLength(4)
      const byId = new Map(all.map((task) => [task.id as string, task]))
      for (const task of all) {
        let depth = 1
        for (let up = task; up.parentId !== null; up = byId.get(up.parentId)!) {
          expect(byId.get(up.parentId)!.projectId).toBe(up.projectId)
          if (++depth > 4) throw new Error('a cycle or a tree deeper than four levels')
        }
      }
    })
  })

  describe('paging sort=position while tasks move', () => {
    it('sees every task that did not move exactly once', async () => {
      const owner = await t.signUp()
      const project = await a.createProject(owner, { name: 'Paging' })
      const tasks: Json[] = []
      for (let i = 0; i < 12; i++) tasks.push(await t.createTask(owner, { title: `t${i}`, projectId: project.id }))
      const byIndex = (i: number) => tasks[i]!.id as string
      // After each page, move a task: from a later page to the very front, from an earlier page to the
      // very end, from a later page to just after the cursor, from an earlier page to among those left.
      const moves: Array<[number, Json]> = [
        [10, { beforeId: byIndex(0) }],
        [1, {}],
        [11, { afterId: byIndex(8) }],
        [4, { beforeId: byIndex(9) }],
      ]
      const moved = new Set<string>()
      const seen: string[] = []
      let cursor: string | null = null
      let round = 0
      do {
        const query: string = `/api/v1/tasks?sort=position&projectId=${project.id}&parentId=none&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
        const res = await t.inject({ url: query, headers: owner.headers })
        expect(res.statusCode, res.body).toBe(200)
        const page = res.json()
        seen.push(...ids(page.items))
        cursor = page.nextCursor
        const move = moves[round++]
        if (move) {
          moved.add(byIndex(move[0]))
          await a.movedTask(owner, byIndex(move[0]), move[1])
        }
      } while (cursor && round < 50)
      expect(cursor).toBeNull()
      for (const task of tasks) {
        if (moved.has(task.id)) continue
        expect(seen.filter((id) => id === task.id), task.title).toHaveLength(1)
      }
    })
  })
})
