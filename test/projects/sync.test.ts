import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, testDatabases, type Account, type TestApp } from '../helpers.js'
import { asStream, get, json, portOf } from '../events/sse.js'
import { api, COLORS, ids, sorted, type Json } from '../resources.js'

const keyOf = (change: Json): string => {
  if (change.type !== 'task' && change.type !== 'project') throw new Error(`a change without a known type: ${JSON.stringify(change)}`)
  if (change.op === 'upsert') {
    const entity = change[change.type]
    if (!entity || typeof entity.id !== 'string') throw new Error(`an upsert without its ${change.type}: ${JSON.stringify(change)}`)
    return `${change.type}:${entity.id}`
  }
  if (change.op === 'delete') return `${change.type}:${change.id}`
  throw new Error(`a change with an unknown op: ${JSON.stringify(change)}`)
}

describe.each(testDatabases)('GET /api/v1/sync with projects on $name', (target) => {
  let t: TestApp
  let a: ReturnType<typeof api>
  beforeAll(async () => {
    t = await buildTestApp(target)
    a = api(t)
  })
  afterAll(() => t.close())

  it('marks every change with its type: project and task upserts and deletes, each in its own shape', async () => {
    const owner = await t.signUp()
    const { cursor } = await a.syncAll(owner)
    const project = await a.createProject(owner, { name: 'Synced', color: 'teal' })
    const task = await t.createTask(owner, { title: 'In it', projectId: project.id })
    const renamed = await a.patchProject(owner, project.id, { name: 'Synced, renamed' })
    const gone = await a.createProject(owner, { name: 'Gone' })
    expect((await t.inject({ method: 'DELETE', url: `/api/v1/projects/${gone.id}`, headers: owner.headers })).statusCode).toBe(204)
    expect((await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${task.id}`, headers: owner.headers })).statusCode).toBe(204)
    const classic = (await t.inject({ method: 'POST', url: `/api/${owner.id}/tasks`, headers: owner.headers, payload: { title: 'Classic' } })).json()
    const classicTask = await a.readTask(owner, classic.id)

    const { changes } = await a.syncAll(owner, cursor)
    const last = new Map<string, Json>()
    for (const change of changes) last.set(keyOf(change), change)
    expect(last.get(`project:${project.id}`)).toEqual({ type: 'project', op: 'upsert', project: renamed })
    expect(last.get(`project:${gone.id}`)).toEqual({ type: 'project', op: 'delete', id: gone.id, deletedAt: expect.any(String) })
    expect(last.get(`task:${task.id}`)).toEqual({ type: 'task', op: 'delete', id: task.id, deletedAt: expect.any(String) })
    expect(last.get(`task:${classic.id}`)).toEqual({ type: 'task', op: 'upsert', task: classicTask })
    expect(last.size).toBe(4)
    expect(Date.parse(last.get(`project:${gone.id}`)!.deletedAt)).toBeGreaterThan(Date.now() - 60_000)
    // A full sync sends the state itself: no tombstones, the latest of each.
    const full = await a.syncAll(owner)
    expect(full.changes).toEqual([
      { type: 'project', op: 'upsert', project: renamed },
      { type: 'task', op: 'upsert', task: classicTask },
    ])
  })

  it('sends every project before any task in a full sync, page after page', async () => {
    const owner = await t.signUp()
    const early = await a.chain(owner, 2, null, 'early')
    const projects: Json[] = []
    // Two with a color, two without (null).
    for (let i = 0; i < 4; i++) projects.push(await a.createProject(owner, i % 2 === 0 ? { name: `p${i}`, color: 'green' } : { name: `p${i}` }))
    const inProjects: Json[] = []
    for (const project of projects) inProjects.push(...await a.chain(owner, 2, project.id, project.name))
    // Touch things out of order: an old project changed after every task, a task changed after that.
    projects[0] = await a.patchProject(owner, projects[0]!.id, { archived: true })
    await a.patchTask(owner, early[0]!.id, { title: 'early, renamed' })
    projects[2] = await a.patchProject(owner, projects[2]!.id, { color: 'red' })

    for (const limit of [1, 3, 1000]) {
      const { changes, pages } = await a.syncAll(owner, undefined, limit)
      if (limit < 1000) expect(pages.length).toBeGreaterThan(1)
      expect(pages.slice(0, -1).every((page) => page.hasMore)).toBe(true)
      expect(pages.at(-1)!.hasMore).toBe(false)
      const types = changes.map((change) => change.type)
      expect(types.lastIndexOf('project')).toBeLessThan(types.indexOf('task'))
      expect(changes.every((change) => change.op === 'upsert')).toBe(true)
      expect(sorted(changes.filter((c) => c.type === 'project').map((c) => c.project.id))).toEqual(sorted(ids(projects)))
      expect(sorted(changes.filter((c) => c.type === 'task').map((c) => c.task.id))).toEqual(sorted(ids([...early, ...inProjects])))
      const archived = changes.find((c) => c.type === 'project' && c.project.id === projects[0]!.id)
      expect(archived!.project).toEqual(projects[0])
    }
  })

  it('leaves a tombstone for a deleted project and for each of its tasks, at every level', async () => {
    const owner = await t.signUp()
    const project = await a.createProject(owner, { name: 'Doomed', color: 'grey' })
    const deep = await a.chain(owner, 4, project.id)
    const second = await t.createTask(owner, { title: 'second', projectId: project.id })
    const kept = await t.createTask(owner, { title: 'kept in the inbox' })
    const { cursor } = await a.syncAll(owner)
    expect((await t.inject({ method: 'DELETE', url: `/api/v1/projects/${project.id}`, headers: owner.headers })).statusCode).toBe(204)
    const { changes } = await a.syncAll(owner, cursor)
    const deletes = changes.filter((c) => c.op === 'delete').map(keyOf)
    expect(sorted(deletes)).toEqual(sorted([`project:${project.id}`, ...[...deep, second].map((task) => `task:${task.id}`)]))
    expect(changes.map(keyOf)).not.toContain(`task:${kept.id}`)
  })

  it('logs every task of a moved subtree with its new project and parent', async () => {
    const owner = await t.signUp()
    const from = await a.createProject(owner, { name: 'From', color: 'orange' })
    const to = await a.createProject(owner, { name: 'To', color: 'purple' })
    const [top, root, child, grandchild] = await a.chain(owner, 4, from.id) as [Json, Json, Json, Json]
    const target = await t.createTask(owner, { title: 'new parent', projectId: to.id })
    const { cursor } = await a.syncAll(owner)
    await a.movedTask(owner, root.id, { parentId: target.id })
    const { changes } = await a.syncAll(owner, cursor)
    const upserts = new Map(changes.filter((c) => c.type === 'task' && c.op === 'upsert').map((c) => [c.task.id as string, c.task]))
    for (const task of [root, child, grandchild]) {
      const now = await a.readTask(owner, task.id)
      expect(now.projectId).toBe(to.id)
      expect(upserts.get(task.id), task.title).toEqual(now)
    }
    expect(upserts.get(root.id)).toMatchObject({ parentId: target.id })
    expect(changes.filter((c) => c.op === 'delete')).toEqual([])
    // The old parent lost a child but did not change: it need not be in the delta; if it is, it is current.
    if (upserts.has(top.id)) expect(upserts.get(top.id)).toEqual(await a.readTask(owner, top.id))

    // Moving the subtree to the inbox logs each again.
    const { cursor: next } = await a.syncAll(owner)
    await a.movedTask(owner, root.id, { projectId: null })
    const again = await a.syncAll(owner, next)
    const moved = again.changes.filter((c) => c.op === 'upsert').map((c) => c.task)
    expect(sorted(moved.map((task) => task.id))).toEqual(expect.arrayContaining(sorted([root.id, child.id, grandchild.id])))
    for (const task of moved) {
      if ([root.id, child.id, grandchild.id].includes(task.id)) expect(task.projectId).toBeNull()
    }
  })

  it('logs each descendant a completion closed', async () => {
    const owner = await t.signUp()
    const [root, child, grandchild] = await a.chain(owner, 3, null) as [Json, Json, Json]
    const { cursor } = await a.syncAll(owner)
    await a.patchTask(owner, root.id, { completed: true })
    const { changes } = await a.syncAll(owner, cursor)
    const upserts = new Map(changes.map((c) => [c.task.id as string, c.task]))
    for (const task of [root, child, grandchild]) {
      expect(upserts.get(task.id)).toEqual(await a.readTask(owner, task.id))
      expect(upserts.get(task.id)).toMatchObject({ completed: true })
    }
  })
})

describe.each(testDatabases)('GET /api/v1/events with projects on $name', (target) => {
  let t: TestApp
  let a: ReturnType<typeof api>
  let port: number
  beforeAll(async () => {
    t = await buildTestApp(target)
    a = api(t)
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    port = portOf(t.app)
  })
  afterAll(() => t.close())

  it('sends project.upsert and project.delete beside task.upsert and task.delete', async () => {
    const owner = await t.signUp()
    const stream = asStream(await get(port, '/api/v1/events', owner.headers))

    const project = await a.createProject(owner, { name: 'Live', color: 'blue' })
    const created = await stream.nextEvent(5_000)
    expect(created.event).toBe('project.upsert')
    expect(created.id).toBeTruthy()
    expect(json(created)).toEqual(project)

    const renamed = await a.patchProject(owner, project.id, { name: 'Live, renamed' })
    const patched = await stream.nextEvent(5_000)
    expect(patched.event).toBe('project.upsert')
    expect(json(patched)).toEqual(renamed)

    const task = await t.createTask(owner, { title: 'Inside', projectId: project.id })
    const taskEvent = await stream.nextEvent(5_000)
    expect(taskEvent.event).toBe('task.upsert')
    expect(json(taskEvent)).toEqual(task)

    const started = Date.now()
    expect((await t.inject({ method: 'DELETE', url: `/api/v1/projects/${project.id}`, headers: owner.headers })).statusCode).toBe(204)
    const seen = () => stream.events.slice(3)
    await stream.waitFor(() => seen().some((e) => e.event === 'project.delete') && seen().some((e) => e.event === 'task.delete'), 5_000, 'project.delete and task.delete')
    const projectDelete = seen().find((e) => e.event === 'project.delete')!
    const tombstone = json(projectDelete)
    expect(Object.keys(tombstone).sort()).toEqual(['deletedAt', 'id'])
    expect(tombstone.id).toBe(project.id)
    expect(Math.abs(Date.parse(tombstone.deletedAt) - started)).toBeLessThan(60_000)
    expect(json(seen().find((e) => e.event === 'task.delete')!)).toEqual({ id: task.id, deletedAt: expect.any(String) })

    // Every event has an id, and the stream resumes from one: a project change missed is replayed.
    const lastId = stream.events.at(-1)!.id!
    stream.close()
    const later = await a.createProject(owner, { name: 'While away' })
    const resumed = asStream(await get(port, '/api/v1/events', { ...owner.headers, 'last-event-id': lastId }))
    const replayed = await resumed.nextEvent(5_000)
    expect(replayed.event).toBe('project.upsert')
    expect(json(replayed)).toEqual(later)
    await resumed.expectQuiet(200)
    resumed.close()
  })
})

/**
 * Two devices of one user apply random rounds of writes (projects and tasks, subtasks, completions,
 * moves, deletes) and sync at random moments, applying each change by (type, id). At the end each
 * copy must equal the server's lists, object for object. On PostgreSQL the writes of a round run
 * concurrently, so transactions interleave and commit out of order.
 */
describe.each(testDatabases)('replicas of projects and tasks on $name', (target) => {
  let t: TestApp
  let a: ReturnType<typeof api>
  beforeAll(async () => {
    t = await buildTestApp(target)
    a = api(t)
  })
  afterAll(() => t.close())

  it('keeps every device an exact copy of the server under random writes', async () => {
    const owner: Account = await t.signUp()
    let seed = 20260611
    const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
    const pick = <T>(items: T[]): T | undefined => items[Math.floor(random() * items.length)]

    type Device = { cursor?: string, copy: Map<string, Json> }
    const devices: Device[] = [{ copy: new Map() }, { copy: new Map() }]
    const pull = async (device: Device) => {
      for (let pages = 0; pages < 1000; pages++) {
        const page = await a.syncPage(owner, device.cursor, 7)
        for (const change of page.changes) {
          const key = keyOf(change)
          if (change.op === 'upsert') device.copy.set(key, change[change.type])
          else device.copy.delete(key)
        }
        device.cursor = page.cursor
        if (!page.hasMore) return
      }
      throw new Error('sync does not end')
    }

    const server = async () => {
      const projects = await a.allProjects(owner)
      const tasks = await a.listTasks(owner)
      return { projects, tasks }
    }
    let projects: string[] = []
    let tasks: string[] = []
    const refresh = async () => {
      const state = await server()
      projects = ids(state.projects)
      tasks = ids(state.tasks)
    }

    const statuses: number[] = []
    const serverErrors: string[] = []
    const send = async (method: 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: Json) => {
      const res = await a.call(owner, method, url, payload)
      statuses.push(res.statusCode)
      if (res.statusCode >= 500) serverErrors.push(`${method} ${url} ${JSON.stringify(payload)} -> ${res.statusCode} ${res.body}`)
      return res
    }
    const write = async () => {
      const roll = random()
      const project = pick(projects)
      const task = pick(tasks)
      if (roll < 0.08 || projects.length === 0) {
        const res = await send('POST', '/api/v1/projects', { name: `p${random().toFixed(4)}`, color: random() < 0.3 ? null : pick([...COLORS]) })
        if (res.statusCode === 201) projects.push(res.json().id)
      } else if (roll < 0.13) {
        const payload = pick<Json>([{ name: `renamed ${random().toFixed(4)}` }, { color: pick([...COLORS]) }, { archived: random() < 0.5 }, { color: null }])
        await send('PATCH', `/api/v1/projects/${project}`, payload)
      } else if (roll < 0.16) {
        await send('POST', `/api/v1/projects/${project}/move`, random() < 0.5 ? {} : { beforeId: pick(projects) })
      } else if (roll < 0.38 || !task) {
        const where = random()
        const payload: Json = { title: `t${random().toFixed(4)}`, priority: pick(['none', 'low', 'high']) }
        if (where < 0.3) payload.projectId = project
        else if (where < 0.7 && task) payload.parentId = task
        const res = await send('POST', '/api/v1/tasks', payload)
        if (res.statusCode === 201) tasks.push(res.json().id)
      } else if (roll < 0.48) {
        await send('PATCH', `/api/v1/tasks/${task}`, pick<Json>([{ title: `u${random().toFixed(4)}` }, { priority: 'medium', tags: ['x'] }, { description: 'd' }]))
      } else if (roll < 0.56) {
        await send('PATCH', `/api/v1/tasks/${task}`, { completed: true })
      } else if (roll < 0.6) {
        await send('PATCH', `/api/v1/tasks/${task}`, { completed: false })
      } else if (roll < 0.64) {
        await send('PATCH', `/api/${owner.id}/tasks/${task}/complete`)
      } else if (roll < 0.8) {
        const options: Json[] = [
          { projectId: project }, { projectId: null }, { parentId: pick(tasks) }, { parentId: null },
          { afterId: pick(tasks) }, { beforeId: pick(tasks) }, {}, { projectId: project, beforeId: pick(tasks) },
        ]
        await send('POST', `/api/v1/tasks/${task}/move`, pick(options))
      } else if (roll < 0.94) {
        const res = await send('DELETE', `/api/v1/tasks/${task}`)
        if (res.statusCode === 204) tasks = tasks.filter((id) => id !== task)
      } else if (projects.length > 2) {
        const res = await send('DELETE', `/api/v1/projects/${project}`)
        if (res.statusCode === 204) projects = projects.filter((id) => id !== project)
      }
    }

    for (let round = 0; round < 40; round++) {
      if (round % 5 === 0) await refresh()
      const concurrent = [write(), write(), write(), write()]
      if (random() < 0.5) concurrent.push(pull(pick(devices)!))
      await Promise.all(concurrent)
    }
    for (const device of devices) await pull(device)

    expect(serverErrors).toEqual([])
    expect(statuses.filter((status) => status < 300).length).toBeGreaterThan(40)

    const state = await server()
    const expected = new Map<string, Json>([
      ...state.projects.map((p) => [`project:${p.id}`, p] as [string, Json]),
      ...state.tasks.map((task) => [`task:${task.id}`, task] as [string, Json]),
    ])
    expect(state.projects.length).toBeGreaterThan(0)
    expect(state.tasks.length).toBeGreaterThan(5)
    for (const device of devices) {
      expect(new Map([...device.copy].sort())).toEqual(new Map([...expected].sort()))
    }

    // The server's own state is a forest: parents exist, share their child's project, four levels at most.
    const byId = new Map(state.tasks.map((task) => [task.id as string, task]))
    const projectIds = new Set(ids(state.projects))
    for (const task of state.tasks) {
      if (task.projectId !== null) expect(projectIds.has(task.projectId), `project of ${task.id}`).toBe(true)
      let depth = 1
      for (let up: Json = task; up.parentId !== null; depth++) {
        const parent = byId.get(up.parentId)
        expect(parent, `parent of ${up.id}`).toBeDefined()
        expect(parent!.projectId).toBe(up.projectId)
        expect(depth, `depth of ${task.id}`).toBeLessThan(4)
        up = parent!
      }
    }
  })
})
