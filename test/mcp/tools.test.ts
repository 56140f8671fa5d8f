import { performance } from 'node:perf_hooks'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, testDatabases, type Account, type TestApp } from '../helpers.js'
import { asStream, get, json } from '../events/sse.js'
import { agent, listening, rpc, type Agent } from './support.js'

const TOOLS = ['list_tasks', 'get_task', 'add_task', 'update_task', 'complete_task', 'delete_task', 'move_task', 'list_projects', 'add_project']
const READ_ONLY = ['list_tasks', 'get_task', 'list_projects']
const MISSING = '00000000-0000-4000-8000-000000000000'

describe.each(testDatabases)('MCP tools on $name', (target) => {
  let t: TestApp
  let base: string
  beforeAll(async () => {
    t = await buildTestApp(target)
    base = await listening(t)
  })
  afterAll(() => t.close())

  /** A new user, and an agent acting for them. */
  const signedIn = async (): Promise<{ account: Account, agent: Agent }> => {
    const account = await t.signUp()
    return { account, agent: await agent(base, account.accessToken) }
  }
  /** The task as GET /api/v1/tasks/{id} answers it. */
  const restTask = async (account: Account, id: string) => (await t.inject({ url: `/api/v1/tasks/${id}`, headers: account.headers })).json()
  const restProject = async (account: Account, payload: Record<string, unknown>) =>
    (await t.inject({ method: 'POST', url: '/api/v1/projects', headers: account.headers, payload })).json()

  describe('tools/list', () => {
    it('lists nine tools, each with one sentence, input and output schemas and the three hints, in under 12 KiB of JSON', async () => {
      const { account } = await signedIn()
      const res = await rpc(base, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, account.headers)
      expect(res.status).toBe(200)
      const { result } = res.json()
      expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThan(12 * 1024)
      expect(result.tools.map((tool: { name: string }) => tool.name)).toEqual(TOOLS)
      for (const tool of result.tools) {
        expect(tool.description, tool.name).toMatch(/^[A-Z][^]*\.$/)
        expect(tool.description.slice(0, -1), `${tool.name}: one sentence`).not.toMatch(/[.!?] /)
        // Unknown arguments are refused by name (update_task below), not announced: see publishedInput.
        expect(tool.inputSchema, tool.name).toMatchObject({ type: 'object', properties: expect.any(Object) })
        expect(tool.outputSchema, tool.name).toMatchObject({ type: 'object', properties: expect.any(Object) })
        expect(tool.annotations, tool.name).toEqual({
          readOnlyHint: READ_ONLY.includes(tool.name),
          destructiveHint: tool.name === 'delete_task',
          idempotentHint: expect.any(Boolean),
          openWorldHint: false,
        })
      }
      const byName = Object.fromEntries(result.tools.map((tool: { name: string }) => [tool.name, tool]))
      // The REST rules, as the model sees them.
      expect(byName.add_task.inputSchema.required).toEqual(['title'])
      expect(byName.add_task.inputSchema.properties.title).toMatchObject({ type: 'string', minLength: 1, maxLength: 500 })
      expect(byName.add_task.inputSchema.properties.idempotencyKey).toMatchObject({ type: 'string', maxLength: 255 })
      expect(byName.update_task.inputSchema.properties.dueAt.type).toEqual(['string', 'null'])
      expect(byName.update_task.inputSchema.properties.version).toMatchObject({ type: 'integer', minimum: 1 })
      expect(byName.list_tasks.inputSchema.properties.limit).toMatchObject({ default: 20, maximum: 100 })
      expect(byName.complete_task.inputSchema.properties.completed).toMatchObject({ type: 'boolean', default: true })
      expect(Object.keys(byName.list_tasks.outputSchema.properties)).toEqual(['items', 'nextCursor'])
      expect(Object.keys(byName.get_task.outputSchema.properties)).toEqual(Object.keys(await t.createTask(account, { title: 'shape' })))
      expect(byName.delete_task.annotations).toMatchObject({ destructiveHint: true, idempotentHint: true })
    })
  })

  describe('each tool, as its REST route', () => {
    it('add_task creates what POST /api/v1/tasks creates, and answers the task as GET answers it', async () => {
      const { account, agent: a } = await signedIn()
      const project = await restProject(account, { name: 'Groceries' })
      const task = await a.ok('add_task', {
        title: '  Milk ', description: 'Oat', priority: 'high', dueAt: '2026-12-01T17:00:00+01:00', tags: ['shopping', 'SHOPPING', 'home'], projectId: project.id,
      })
      expect(task).toMatchObject({ title: 'Milk', description: 'Oat', priority: 'high', dueAt: '2026-12-01T16:00:00.000Z', tags: ['shopping', 'home'], projectId: project.id, version: 1 })
      expect(task).toEqual(await restTask(account, task.id))
      const sub = await a.ok('add_task', { title: 'Oat milk', parentId: task.id })
      expect(sub).toMatchObject({ parentId: task.id, projectId: project.id })
      const reminded = await a.ok('add_task', { title: 'Call', dueAt: '2099-01-01T09:00:00Z', reminders: [{ offsetMinutes: -30 }] })
      expect(reminded.reminders).toEqual([{ id: expect.any(String), offsetMinutes: -30, missedAt: null }])
      expect(await a.refused('add_task', { title: 'Call', reminders: [{ offsetMinutes: -30 }] })).toContain('[reminders: 0: offsetMinutes needs a task with a dueAt]')
    })

    it('add_task refuses what POST refuses, naming the field, and stores nothing', async () => {
      const { account, agent: a } = await signedIn()
      expect(await a.refused('add_task', { title: '   ' })).toBe('Refused (400): The arguments are not valid [title: must not be blank]')
      expect(await a.refused('add_task', { title: 'x', priority: 'urgent', colour: 'red' }))
        .toBe('Refused (400): The arguments are not valid [colour: is not a known field; priority: must be one of: none, low, medium, high]')
      expect(await a.refused('add_task', { title: 'x'.repeat(501) })).toContain('title: must be at most 500 characters')
      expect(await a.refused('add_task', { title: 'x', dueAt: '2026-12-31T23:59:60Z' })).toMatch(/\[dueAt: .*leap second/)
      expect(await a.refused('add_task', { title: 5 })).toContain('title: must be a string') // never coerced to "5"
      expect(await a.refused('add_task', { title: 'a\u0000b' })).toMatch(/^Refused \(400\): .*\[title: must not contain the NUL character\]$/)
      expect(await a.refused('add_task', { title: 'x', parentId: MISSING })).toBe('Refused (404): parent task not found [parentId: is not one of yours]')
      expect(await a.refused('add_task', { title: 'x', projectId: MISSING })).toBe('Refused (404): project not found [projectId: is not one of yours]')
      let parent = await a.ok('add_task', { title: 'level 0' })
      for (let level = 1; level <= 3; level++) parent = await a.ok('add_task', { title: `level ${level}`, parentId: parent.id })
      expect(await a.refused('add_task', { title: 'level 4', parentId: parent.id })).toMatch(/^Refused \(409 too-deep\): Tasks nest at most four levels .*\[parentId: /)
      const list = (await t.inject({ url: '/api/v1/tasks?limit=100', headers: account.headers })).json()
      expect(list.items.map((task: { title: string }) => task.title).sort()).toEqual(['level 0', 'level 1', 'level 2', 'level 3'])
    })

    it('get_task answers the task as GET does; an unknown id is not found, a malformed one names id', async () => {
      const { account, agent: a } = await signedIn()
      const task = await t.createTask(account, { title: 'Report', tags: ['work'] })
      expect(await a.ok('get_task', { id: task.id })).toEqual(task)
      expect(await a.refused('get_task', { id: MISSING })).toBe('Refused (404): task not found [id: is not one of yours]')
      expect(await a.refused('get_task', { id: 'report' })).toContain('[id: must be a UUID')
      expect(await a.refused('get_task', {})).toContain('[id: is required]')
    })

    it('list_tasks answers the page GET /api/v1/tasks answers for the same filters, 20 by default, with a cursor that goes on', async () => {
      const { account, agent: a } = await signedIn()
      for (let i = 0; i < 22; i++) {
        await t.createTask(account, { title: `task ${String(i).padStart(2, '0')}`, tags: i % 2 ? ['odd'] : ['even'], dueAt: `2026-12-${String(i + 1).padStart(2, '0')}T09:00:00Z` })
      }
      const first = await a.ok('list_tasks')
      expect(first.items).toHaveLength(20)
      expect(first).toEqual((await t.inject({ url: '/api/v1/tasks', headers: account.headers })).json())
      const second = await a.ok('list_tasks', { cursor: first.nextCursor })
      expect(second.items.map((task: { title: string }) => task.title)).toEqual(['task 01', 'task 00'])
      expect(second.nextCursor).toBeNull()
      const filtered = await a.ok('list_tasks', { tag: ['odd'], dueBefore: '2026-12-08T00:00:00Z', sort: 'dueAt', limit: 2 })
      expect(filtered).toEqual((await t.inject({ url: '/api/v1/tasks?tag=odd&dueBefore=2026-12-08T00:00:00Z&sort=dueAt&limit=2', headers: account.headers })).json())
      expect(filtered.items.map((task: { title: string }) => task.title)).toEqual(['task 01', 'task 03'])
      expect(await a.refused('list_tasks', { limit: 0 })).toBe('Refused (400): The arguments are not valid [limit: must be at least 1]')
      expect(await a.refused('list_tasks', { limit: '5' })).toContain('limit: must be a whole number') // JSON arguments are typed: no coercion
      expect(await a.refused('list_tasks', { cursor: 'not-a-cursor' })).toMatch(/^Refused \(400\): The cursor is not valid \[cursor: /)
      expect(await a.refused('list_tasks', { projectId: 'mine' })).toContain('[projectId: must be a project')
    })

    it('update_task changes the fields given, null clears description and dueAt; a stale version changes nothing', async () => {
      const { account, agent: a } = await signedIn()
      const task = await t.createTask(account, { title: 'Report', description: 'draft', dueAt: '2026-12-01T17:00:00Z', tags: ['work'] })
      const changed = await a.ok('update_task', { id: task.id, title: 'Final report', description: null, dueAt: null, priority: 'low', version: 1 })
      expect(changed).toMatchObject({ title: 'Final report', description: null, dueAt: null, priority: 'low', tags: ['work'], version: 2 })
      expect(changed).toEqual(await restTask(account, task.id))
      expect(await a.refused('update_task', { id: task.id, title: 'Lost update', version: 1 }))
        .toBe('Refused (412 precondition-failed): The task has changed since the ETag in If-Match was issued; fetch it again and retry [version: is no longer the current version]')
      expect(await restTask(account, task.id)).toEqual(changed)
      expect(await a.refused('update_task', { id: task.id }))
        .toBe('Refused (400): The arguments name nothing to change [arguments: must name at least one field to change: title, description, completed, priority, dueAt, tags, recurrence, reminders]')
      expect(await a.refused('update_task', { id: task.id, projectId: null })).toContain('[projectId: is not a known field]') // moving is move_task's
      expect(await a.refused('update_task', { id: MISSING, title: 'x' })).toBe('Refused (404): task not found [id: is not one of yours]')
    })

    it('complete_task completes a task with its open subtasks, and reopens it with completed false', async () => {
      const { account, agent: a } = await signedIn()
      const parent = await t.createTask(account, { title: 'Move house' })
      const child = await t.createTask(account, { title: 'Pack', parentId: parent.id })
      const done = await a.ok('complete_task', { id: parent.id })
      expect(done).toMatchObject({ completed: true, completedAt: expect.any(String), version: 2 })
      expect(await restTask(account, child.id)).toMatchObject({ completed: true })
      const reopened = await a.ok('complete_task', { id: parent.id, completed: false, version: 2 })
      expect(reopened).toMatchObject({ completed: false, completedAt: null, version: 3 })
      expect(await restTask(account, child.id)).toMatchObject({ completed: true }) // reopening reopens that task only
      expect(await a.refused('complete_task', { id: parent.id, version: 2 })).toMatch(/^Refused \(412 precondition-failed\).*\[version: /)
      expect(await a.refused('complete_task', { id: MISSING })).toBe('Refused (404): task not found [id: is not one of yours]')
    })

    it('add_task makes a recurring task, and complete_task completes one occurrence: the task moves on, open, with its history', async () => {
      const { account, agent: a } = await signedIn()
      // Every Monday at 09:00 in Berlin, from the first Monday of March two years on (CET, UTC+1).
      const year = new Date().getUTCFullYear() + 2
      const firstMonday = [1, 2, 3, 4, 5, 6, 7].map((day) => new Date(Date.UTC(year, 2, day, 8))).find((d) => d.getUTCDay() === 1)!
      const task = await a.ok('add_task', {
        title: 'Weekly review', dueAt: firstMonday.toISOString(),
        recurrence: { rule: 'FREQ=WEEKLY;BYDAY=MO', timezone: 'Europe/Berlin' },
      }) as { id: string, dueAt: string, recurrence: object }
      expect(task.recurrence).toEqual({ rule: 'FREQ=WEEKLY;BYDAY=MO', timezone: 'Europe/Berlin', from: 'due' })
      const done = await a.ok('complete_task', { id: task.id, version: 1 })
      // Still open, a week on: the same 09:00 in Berlin (DST begins at the end of March).
      expect(done).toMatchObject({ completed: false, version: 2, dueAt: new Date(firstMonday.getTime() + 7 * 86_400_000).toISOString() })
      const history = (await t.inject({ url: `/api/v1/tasks/${task.id}/completions`, headers: account.headers })).json()
      expect(history.items.map((c: { occurrence: string }) => c.occurrence)).toEqual([firstMonday.toISOString()])
      expect(await a.refused('add_task', { title: 'x', dueAt: firstMonday.toISOString(), recurrence: { rule: 'FREQ=HOURLY' } })).toMatch(/recurrence\.rule/)
    })

    it('delete_task deletes a task with its subtasks; a stale version deletes nothing', async () => {
      const { account, agent: a } = await signedIn()
      const parent = await t.createTask(account, { title: 'Old' })
      const child = await t.createTask(account, { title: 'Older', parentId: parent.id })
      expect(await a.refused('delete_task', { id: parent.id, version: 7 })).toMatch(/^Refused \(412 precondition-failed\)/)
      expect(await restTask(account, parent.id)).toEqual(parent)
      expect(await a.ok('delete_task', { id: parent.id, version: 1 })).toEqual({ id: parent.id, deleted: true })
      for (const id of [parent.id, child.id]) expect((await t.inject({ url: `/api/v1/tasks/${id}`, headers: account.headers })).statusCode).toBe(404)
      expect(await a.refused('delete_task', { id: parent.id })).toBe('Refused (404): task not found [id: is not one of yours]')
    })

    it('move_task moves a task with its subtree as POST /move does, and refuses a cycle naming parentId', async () => {
      const { account, agent: a } = await signedIn()
      const work = await restProject(account, { name: 'Work' })
      const first = await t.createTask(account, { title: 'first' })
      const second = await t.createTask(account, { title: 'second' })
      const child = await t.createTask(account, { title: 'child', parentId: second.id })
      const moved = await a.ok('move_task', { id: second.id, projectId: work.id })
      expect(moved).toMatchObject({ projectId: work.id, parentId: null, version: 2 })
      expect(await restTask(account, child.id)).toMatchObject({ projectId: work.id, parentId: second.id })
      const back = await a.ok('move_task', { id: second.id, projectId: null, beforeId: first.id, version: 2 })
      const inbox = await a.ok('list_tasks', { projectId: 'inbox', parentId: 'none', sort: 'position' })
      expect(inbox.items.map((task: { id: string }) => task.id)).toEqual([second.id, first.id])
      expect(back).toEqual(await restTask(account, second.id))
      expect(await a.refused('move_task', { id: second.id, parentId: child.id }))
        .toBe('Refused (409 cycle): A task cannot be moved under itself or one of its own subtasks [parentId: is the task itself or one of its subtasks]')
      expect(await a.refused('move_task', { id: second.id, beforeId: second.id })).toMatch(/^Refused \(400\): .*\[beforeId: /)
      expect(await a.refused('move_task', { id: second.id, version: 1 })).toMatch(/^Refused \(412 precondition-failed\)/)
    })

    it('list_projects and add_project answer as GET and POST /api/v1/projects, with the same refusals', async () => {
      const { account, agent: a } = await signedIn()
      const work = await a.ok('add_project', { name: ' Work ', color: 'blue' })
      expect(work).toMatchObject({ name: 'Work', color: 'blue', archived: false, version: 1 })
      const home = await a.ok('add_project', { name: 'Home' })
      expect(home.color).toBeNull()
      const page = await a.ok('list_projects')
      expect(page.items.map((p: { name: string }) => p.name)).toEqual(['Work', 'Home'])
      expect(page).toEqual((await t.inject({ url: '/api/v1/projects', headers: account.headers })).json())
      expect((await a.ok('list_projects', { limit: 1, cursor: (await a.ok('list_projects', { limit: 1 })).nextCursor })).items[0].id).toBe(home.id)
      await t.inject({ method: 'PATCH', url: `/api/v1/projects/${home.id}`, headers: account.headers, payload: { archived: true } })
      expect((await a.ok('list_projects', { archived: true })).items.map((p: { id: string }) => p.id)).toEqual([home.id])
      expect(await a.refused('add_project', { name: 'x', color: 'mauve' })).toContain('[color: must be one of: red, orange, yellow, green, teal, blue, purple, pink, grey, or null]')
      expect(await a.refused('add_project', { name: '' })).toContain('[name: must not be blank]')
      expect(await a.refused('list_projects', { cursor: 'nope' })).toMatch(/^Refused \(400\): The cursor is not valid \[cursor: /)
    })

    it('refuses an unknown tool as a result naming the tools, not as a protocol error', async () => {
      const { agent: a } = await signedIn()
      expect(await a.refused('drop_database', {})).toBe(`Refused (400): There is no tool named drop_database [name: must be one of: ${TOOLS.join(', ')}]`)
    })
  })

  describe('retries', () => {
    it('add_task with an idempotencyKey makes one task however often it is retried, even at once, and REST with the key replays it', async () => {
      const { account, agent: a } = await signedIn()
      const args = { title: 'Buy milk', tags: ['shopping'], idempotencyKey: 'agent-call-7f3a' }
      const first = await a.ok('add_task', args)
      expect(await a.ok('add_task', args)).toEqual(first)
      const raced = await Promise.all(Array.from({ length: 5 }, () => a.ok('add_task', { ...args, idempotencyKey: 'agent-call-raced' })))
      expect(new Set(raced.map((task) => task.id)).size).toBe(1)
      const rest = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: { ...account.headers, 'idempotency-key': 'agent-call-7f3a' }, payload: { title: 'Buy milk', tags: ['shopping'] } })
      expect(rest.headers['idempotent-replayed']).toBe('true')
      expect(rest.json().id).toBe(first.id)
      expect(await a.refused('add_task', { ...args, title: 'Buy bread' }))
        .toBe('Refused (422 idempotency-key-reused): This Idempotency-Key was already used with a different body; use a new key for a new task [idempotencyKey: was used before with other arguments]')
      const list = (await t.inject({ url: '/api/v1/tasks?limit=100', headers: account.headers })).json()
      expect(list.items.map((task: { title: string }) => task.title)).toEqual(['Buy milk', 'Buy milk'])
    })

    it('add_project with an idempotencyKey makes one project; a task\'s key is never replayed as a project', async () => {
      const { account, agent: a } = await signedIn()
      const first = await a.ok('add_project', { name: 'Garden', idempotencyKey: 'p-1' })
      expect(await a.ok('add_project', { name: 'Garden', idempotencyKey: 'p-1' })).toEqual(first)
      await a.ok('add_task', { title: 'Garden', idempotencyKey: 't-1' })
      expect(await a.refused('add_project', { name: 'Garden', idempotencyKey: 't-1' })).toMatch(/^Refused \(422 idempotency-key-reused\)/)
      expect((await t.inject({ url: '/api/v1/projects', headers: account.headers })).json().items).toHaveLength(1)
    })
  })

  describe('isolation', () => {
    it('treats another user\'s task and project ids as not found through every tool, and changes nothing of theirs', async () => {
      const bob = await t.signUp()
      const bobProject = await restProject(bob, { name: 'Bob\'s' })
      const bobTask = await t.createTask(bob, { title: 'Bob\'s secret', projectId: bobProject.id })
      const { account: alice, agent: a } = await signedIn()
      const mine = await t.createTask(alice, { title: 'mine' })
      const notFound = 'Refused (404): task not found [id: is not one of yours]'
      expect(await a.refused('get_task', { id: bobTask.id })).toBe(notFound)
      expect(await a.refused('update_task', { id: bobTask.id, title: 'pwned' })).toBe(notFound)
      expect(await a.refused('update_task', { id: bobTask.id, title: 'pwned', version: 1 })).toBe(notFound) // not a 412: that would tell it exists
      expect(await a.refused('complete_task', { id: bobTask.id })).toBe(notFound)
      expect(await a.refused('delete_task', { id: bobTask.id })).toBe(notFound)
      expect(await a.refused('move_task', { id: bobTask.id, projectId: null })).toBe(notFound)
      expect(await a.refused('move_task', { id: mine.id, projectId: bobProject.id })).toBe('Refused (404): project not found [projectId: is not one of yours]')
      expect(await a.refused('move_task', { id: mine.id, parentId: bobTask.id })).toBe('Refused (404): parent task not found [parentId: is not one of yours]')
      expect(await a.refused('move_task', { id: mine.id, beforeId: bobTask.id })).toMatch(/^Refused \(404\): .*\[beforeId: is not one of yours\]$/)
      expect(await a.refused('add_task', { title: 'x', projectId: bobProject.id })).toBe('Refused (404): project not found [projectId: is not one of yours]')
      expect(await a.refused('add_task', { title: 'x', parentId: bobTask.id })).toBe('Refused (404): parent task not found [parentId: is not one of yours]')
      expect((await a.ok('list_tasks', { projectId: bobProject.id })).items).toEqual([])
      expect((await a.ok('list_tasks', { parentId: bobTask.id })).items).toEqual([])
      expect((await a.ok('list_tasks', { q: 'secret' })).items).toEqual([])
      expect((await a.ok('list_projects')).items).toEqual([])
      expect(await restTask(bob, bobTask.id)).toEqual(bobTask)
    })
  })

  describe('the same service', () => {
    it('delivers an agent\'s add_task to an open event stream of the user within a second, and to /sync', async () => {
      const { account, agent: a } = await signedIn()
      const stream = asStream(await get(Number(new URL(base).port), '/api/v1/events', account.headers))
      const started = performance.now()
      const task = await a.ok('add_task', { title: 'Call the plumber' })
      const event = await stream.nextEvent(2_000)
      expect(event.at - started).toBeLessThan(1_000)
      expect(event.event).toBe('task.upsert')
      expect(json(event)).toEqual(task)
      const sync = (await t.inject({ url: '/api/v1/sync', headers: account.headers })).json()
      expect(sync.changes).toContainEqual({ type: 'task', op: 'upsert', task })
      await a.ok('delete_task', { id: task.id })
      expect((await stream.nextEvent(2_000)).event).toBe('task.delete')
      const since = (await t.inject({ url: `/api/v1/sync?since=${encodeURIComponent(sync.cursor)}`, headers: account.headers })).json()
      expect(since.changes).toEqual([{ type: 'task', op: 'delete', id: task.id, deletedAt: expect.any(String) }])
    })
  })
})
