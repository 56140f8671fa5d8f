import { readdirSync, readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest'
import { signAccessToken } from '../../src/auth/tokens.js'
import {
  createClient, etagOf, ProblemType, TaskbaseError,
  type Change, type ClientOptions, type Session, type Subscription, type SyncPage, type Task, type TaskbaseClient,
  type TaskPage, type TaskQuery, type UpdateTaskBody,
} from '../../packages/client/src/index.js'
import { ProblemType as ServerProblemType } from '../../src/http/problem.js'
import { syncCursors } from '../../src/sync/cursor.js'
import { buildTestApp, PASSWORD, testDatabases, uniqueEmail, type TestApp } from '../helpers.js'

/** Every wait in this file ends: a missing event fails the test instead of hanging it. */
const within = { timeout: 10_000, interval: 20 }

/**
 * The Node 20 global fetch, recording what the client sends. Event streams can be cut (as a network
 * failure would) and their reconnection held back, to make changes while the client is away.
 */
function recordingFetch () {
  const sent: Array<{ method: string, path: string, lastEventId: string | null, status?: number }> = []
  const streams = new Set<AbortController>()
  let held: Promise<void> | undefined
  let release = () => {}
  const send = async (request: Request) => {
    if (new URL(request.url).pathname !== '/api/v1/events') return globalThis.fetch(request)
    await held
    const cut = new AbortController()
    streams.add(cut)
    return globalThis.fetch(request, { signal: AbortSignal.any([request.signal, cut.signal]) })
  }
  const fetch = async (request: Request) => {
    const entry: (typeof sent)[number] = { method: request.method, path: new URL(request.url).pathname, lastEventId: request.headers.get('last-event-id') }
    sent.push(entry)
    const response = await send(request)
    entry.status = response.status
    return response
  }
  return {
    fetch,
    sent,
    count: (method: string, path: string) => sent.filter((r) => r.method === method && r.path === path).length,
    /** Drops every open event stream; new ones wait until `resume()`. */
    cutStreams () {
      held = new Promise((resolve) => { release = resolve })
      for (const stream of streams) stream.abort()
      streams.clear()
    },
    resume () {
      held = undefined
      release()
    },
  }
}

/** The claims of one of our access tokens (the test only reads them; the server checks them). */
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string, sid: string }

describe('the client module', () => {
  it('imports nothing but its own files and openapi-fetch (it runs in browsers)', () => {
    const folder = new URL('../../packages/client/src/', import.meta.url)
    for (const file of readdirSync(folder).filter((name) => name.endsWith('.ts'))) {
      const source = readFileSync(new URL(file, folder), 'utf8')
      const specifiers = [...source.matchAll(/(?:import|export)[^'"]*?from\s+'([^']+)'/g)].map((m) => m[1])
      for (const specifier of specifiers) {
        expect(specifier === 'openapi-fetch' || /^\.\/[\w-]+\.js$/.test(specifier!), `${file} imports ${specifier}`).toBe(true)
      }
    }
  })

  it('derives its types from the generated document (checked by tsc: a type lost to never fails here)', () => {
    expectTypeOf<Task['version']>().toEqualTypeOf<number>()
    expectTypeOf<Task['priority']>().toEqualTypeOf<'none' | 'low' | 'medium' | 'high'>()
    expectTypeOf<TaskPage['nextCursor']>().toEqualTypeOf<string | null>()
    expectTypeOf<TaskQuery['tag']>().toEqualTypeOf<string[] | undefined>()
    expectTypeOf<UpdateTaskBody['completed']>().toEqualTypeOf<boolean | undefined>()
    expectTypeOf<Session['user']['id']>().toEqualTypeOf<string>()
    expectTypeOf<SyncPage['hasMore']>().toEqualTypeOf<boolean>()
    expectTypeOf<Change['op']>().toEqualTypeOf<'upsert' | 'delete' | 'fired' | 'missed'>()
  })

  it('knows the same problem types as the server', () => {
    expect(ProblemType).toEqual(ServerProblemType)
  })
})

describe.each(testDatabases)('the typed client over HTTP on $name', (target) => {
  let t: TestApp
  let baseUrl: string
  const subscriptions: Subscription[] = []

  beforeAll(async () => {
    t = await buildTestApp(target)
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    for (const subscription of subscriptions) subscription.close()
    await t.close()
  })

  const client = (options: Partial<ClientOptions> = {}) => createClient({ baseUrl, ...options })
  /** A client signed in as a new user, sending through a recording fetch. */
  const signedIn = async (options: Partial<ClientOptions> = {}) => {
    const recorder = recordingFetch()
    const tb = client({ fetch: recorder.fetch, ...options })
    const session = await tb.auth.register({ email: uniqueEmail('client'), password: PASSWORD })
    return { tb, recorder, session }
  }
  const rejection = async (pending: Promise<unknown>): Promise<TaskbaseError> => {
    const error = await pending.then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(TaskbaseError)
    return error as TaskbaseError
  }

  describe('errors', () => {
    it('rejects with a TaskbaseError carrying status, type, detail and the invalid fields', async () => {
      const { tb } = await signedIn()
      const error = await rejection(tb.tasks.create({ title: '   ' }))
      expect(error).toMatchObject({ name: 'TaskbaseError', status: 400, type: 'about:blank', title: 'Bad Request' })
      expect(error.detail).toEqual(expect.any(String))
      expect(error.message).toBe(error.detail)
      expect(error.errors).toContainEqual({ path: 'body.title', message: 'must not be blank' })
      expect(error.instance).toEqual(expect.any(String))
    })

    it('rejects with 404 for a missing task, 401 without a session, 409 for a taken email', async () => {
      const { tb, session } = await signedIn()
      expect(await rejection(tb.tasks.get('00000000-0000-4000-8000-000000000000')))
        .toMatchObject({ status: 404, detail: 'task not found', errors: [] })
      expect(await rejection(client().tasks.list())).toMatchObject({ status: 401 })
      expect(await rejection(client().auth.register({ email: session.user.email!, password: PASSWORD })))
        .toMatchObject({ status: 409 })
      expect(await rejection(client().auth.login({ email: session.user.email!, password: 'not the password' })))
        .toMatchObject({ status: 401 })
    })
  })

  describe('the session', () => {
    it('keeps the session of register and login, and tells onSession', async () => {
      const seen: Array<Session | null> = []
      const tb = client({ onSession: (session) => seen.push(session) })
      const email = uniqueEmail('ada')
      const registered = await tb.auth.register({ email, password: PASSWORD, name: 'Ada' })
      expect(registered).toMatchObject({ user: { email, name: 'Ada' }, tokenType: 'Bearer' })
      expect(tb.auth.session).toEqual(registered)
      expect(seen).toEqual([registered])
      const task = await tb.tasks.create({ title: 'Mine' })

      const elsewhere = client({ onSession: (session) => seen.push(session) })
      const loggedIn = await elsewhere.auth.login({ email, password: PASSWORD })
      expect(seen).toEqual([registered, loggedIn])
      expect((await elsewhere.tasks.list()).items.map((t) => t.id)).toEqual([task.id])

      await elsewhere.auth.logout()
      expect(elsewhere.auth.session).toBeNull()
      expect(seen.at(-1)).toBeNull()
      expect(await rejection(elsewhere.tasks.list())).toMatchObject({ status: 401 })
    })

    it('uses a session obtained elsewhere, given to setSession or to createClient', async () => {
      const { tb, session } = await signedIn()
      await tb.tasks.create({ title: 'Shared' })
      const onSession = vi.fn()
      const other = client({ onSession })
      other.auth.setSession(session)
      expect((await other.tasks.list()).items).toHaveLength(1)
      expect((await client({ session }).tasks.list()).items).toHaveLength(1)
      expect(onSession).not.toHaveBeenCalled()
    })

    it('refreshes once for ten calls refused together, and every call succeeds', async () => {
      const seen: Array<Session | null> = []
      const { tb, recorder, session } = await signedIn({ onSession: (s) => seen.push(s) })
      await tb.tasks.create({ title: 'Survives the refresh' })
      const { sub, sid } = claimsOf(session.accessToken)
      // Signed with the server's keys but already expired: every call is refused with a 401.
      const expired = await signAccessToken({ ...t.keys, accessTokenTtlSeconds: -60 }, sub, sid)
      tb.auth.setSession({ ...session, accessToken: expired })
      seen.length = 0

      const pages = await Promise.all(Array.from({ length: 10 }, () => tb.tasks.list()))

      expect(pages.map((page) => page.items.length)).toEqual(Array(10).fill(1))
      expect(recorder.count('POST', '/api/v1/auth/refresh')).toBe(1)
      expect(seen).toHaveLength(1)
      expect(seen[0]).toMatchObject({ user: session.user, tokenType: 'Bearer' })
      expect(seen[0]!.refreshToken).not.toBe(session.refreshToken)
      // A second exchange of the spent refresh token would have revoked the session: it still refreshes.
      tb.auth.setSession({ ...seen[0]!, accessToken: expired })
      expect((await tb.tasks.list()).items).toHaveLength(1)
      expect(recorder.count('POST', '/api/v1/auth/refresh')).toBe(2)
    })

    it('drops the session and tells onSession(null) when the server refuses the refresh', async () => {
      const seen: Array<Session | null> = []
      const { tb, session } = await signedIn({ onSession: (s) => seen.push(s) })
      const { sub, sid } = claimsOf(session.accessToken)
      const expired = await signAccessToken({ ...t.keys, accessTokenTtlSeconds: -60 }, sub, sid)
      tb.auth.setSession({ ...session, accessToken: expired, refreshToken: 'never-issued' })

      expect(await rejection(tb.tasks.list())).toMatchObject({ status: 401 })
      expect(tb.auth.session).toBeNull()
      expect(seen.at(-1)).toBeNull()
    })
  })

  describe('tasks', () => {
    it('creates, reads, lists, updates and deletes a task', async () => {
      const { tb } = await signedIn()
      const created = await tb.tasks.create({ title: 'Write the report', priority: 'high', tags: ['work'], dueAt: '2026-12-01T17:00:00Z' })
      expect(created).toMatchObject({ title: 'Write the report', priority: 'high', tags: ['work'], completed: false, version: 1 })
      expect(await tb.tasks.get(created.id)).toEqual(created)
      expect((await tb.tasks.list({ tag: ['work'], completed: false })).items).toEqual([created])
      expect((await tb.tasks.list({ completed: true })).items).toEqual([])

      const updated = await tb.tasks.update(created.id, { completed: true }, { ifMatch: created })
      expect(updated).toMatchObject({ id: created.id, completed: true, version: 2 })
      const { response } = await tb.api.GET('/api/v1/tasks/{id}', { params: { path: { id: created.id } } })
      expect(response.headers.get('etag')).toBe(etagOf(updated))

      await tb.tasks.delete(created.id, { ifMatch: response.headers.get('etag')! })
      expect(await rejection(tb.tasks.get(created.id))).toMatchObject({ status: 404 })
    })

    it('rejects an update with a stale ETag with 412, and changes nothing', async () => {
      const { tb } = await signedIn()
      const created = await tb.tasks.create({ title: 'Contested' })
      await tb.tasks.update(created.id, { title: 'Changed on another device' })

      const error = await rejection(tb.tasks.update(created.id, { title: 'Mine' }, { ifMatch: etagOf(created) }))
      expect(error).toMatchObject({ status: 412, type: ProblemType.preconditionFailed })
      expect(await rejection(tb.tasks.delete(created.id, { ifMatch: created }))).toMatchObject({ status: 412 })
      expect(await tb.tasks.get(created.id)).toMatchObject({ title: 'Changed on another device', version: 2 })
    })

    it('answers a retried create with an Idempotency-Key with the first task', async () => {
      const { tb } = await signedIn()
      const first = await tb.tasks.create({ title: 'Once' }, { idempotencyKey: 'create-once' })
      expect(await tb.tasks.create({ title: 'Once' }, { idempotencyKey: 'create-once' })).toEqual(first)
      expect((await tb.tasks.list()).items).toHaveLength(1)
    })

    it('completes occurrences of a recurring task, reads its history and its next dates, and skips one', async () => {
      const { tb, recorder } = await signedIn()
      const year = new Date().getUTCFullYear() + 2
      const on = (day: number) => new Date(Date.UTC(year, 0, day, 9)).toISOString()
      const task = await tb.tasks.create({ title: 'Stretch', dueAt: on(1), recurrence: { rule: 'FREQ=DAILY', timezone: 'UTC' } })
      expect(task.recurrence).toEqual({ rule: 'FREQ=DAILY', timezone: 'UTC', from: 'due' })
      let current = task
      for (let i = 0; i < 5; i++) current = await tb.tasks.update(task.id, { completed: true }, { ifMatch: current })
      expect(current).toMatchObject({ completed: false, dueAt: on(6) })
      expect(await rejection(tb.tasks.update(task.id, { completed: true }, { ifMatch: task }))).toMatchObject({ status: 412, type: ProblemType.preconditionFailed })

      expect(await tb.tasks.occurrences(task.id, { limit: 3 })).toEqual([on(6), on(7), on(8)])
      const page = await tb.tasks.completions(task.id, { limit: 2 })
      expect(page.items.map((c) => c.occurrence)).toEqual([on(5), on(4)])
      const history: string[] = []
      for await (const completion of tb.tasks.allCompletions(task.id, { limit: 2 })) history.push(completion.occurrence)
      expect(history).toEqual([on(5), on(4), on(3), on(2), on(1)])
      expect(recorder.count('GET', `/api/v1/tasks/${task.id}/completions`)).toBe(4)

      expect(await tb.tasks.skip(task.id, { ifMatch: current })).toMatchObject({ dueAt: on(7) })
      expect((await tb.tasks.completions(task.id)).items).toHaveLength(5)
      const plain = await tb.tasks.create({ title: 'Once' })
      expect(await rejection(tb.tasks.skip(plain.id))).toMatchObject({ status: 409, type: ProblemType.notRepeating })
    })

    it('walks every page with listAll, fetching a page at a time', async () => {
      const { tb, recorder } = await signedIn()
      for (let batch = 0; batch < 45; batch += 15) {
        await Promise.all(Array.from({ length: 15 }, (_, i) => tb.tasks.create({ title: `Task ${String(batch + i).padStart(2, '0')}` })))
      }

      const titles: string[] = []
      for await (const task of tb.tasks.listAll({ limit: 20, sort: 'title' })) titles.push(task.title)

      expect(titles).toEqual(Array.from({ length: 45 }, (_, i) => `Task ${String(i).padStart(2, '0')}`))
      expect(recorder.count('GET', '/api/v1/tasks')).toBe(3)
      const sizes: number[] = []
      for await (const page of tb.tasks.pages({ limit: 20 })) sizes.push(page.items.length)
      expect(sizes).toEqual([20, 20, 5])
    })
  })

  describe('projects and subtasks', () => {
    it('creates, orders, archives and deletes projects, and moves a task with its subtasks between them', async () => {
      const { tb } = await signedIn()
      const work = await tb.projects.create({ name: 'Work', color: 'blue' })
      const home = await tb.projects.create({ name: 'Home' })
      expect((await tb.projects.list()).items.map((p) => p.name)).toEqual(['Work', 'Home'])
      const moved = await tb.projects.move(home.id, { beforeId: work.id }, { ifMatch: home })
      expect((await tb.projects.list()).items.map((p) => p.id)).toEqual([home.id, work.id])
      expect(moved.version).toBe(2)

      const parent = await tb.tasks.create({ title: 'Plan the trip', projectId: work.id })
      const child = await tb.tasks.create({ title: 'Book the train', parentId: parent.id })
      expect(child).toMatchObject({ projectId: work.id, parentId: parent.id })
      await tb.tasks.move(parent.id, { projectId: home.id })
      expect((await tb.tasks.list({ projectId: home.id, sort: 'position' })).items.map((task) => task.title).sort())
        .toEqual(['Book the train', 'Plan the trip'])

      await tb.projects.update(work.id, { archived: true })
      expect((await tb.projects.list({ archived: true })).items.map((p) => p.id)).toEqual([work.id])
      const all: string[] = []
      for await (const project of tb.projects.listAll({ limit: 1 })) all.push(project.name)
      expect(all).toEqual(['Home'])

      await tb.projects.delete(home.id)
      expect(await rejection(tb.tasks.get(child.id))).toMatchObject({ status: 404 })
      expect(await rejection(tb.tasks.move(parent.id, { projectId: work.id }))).toMatchObject({ status: 404 })
    })
  })

  describe('sync', () => {
    it('pulls every change page after page, and a cursor that then gives nothing new', async () => {
      const { tb, recorder } = await signedIn()
      const tasks = await Promise.all(['a', 'b', 'c'].map((title) => tb.tasks.create({ title })))

      const first = await tb.sync.pull(undefined, { limit: 2 })
      expect(first.changes.map((c) => c.type === 'task' && c.op === 'upsert' && c.task.id).sort()).toEqual(tasks.map((task) => task.id).sort())
      expect(recorder.count('GET', '/api/v1/sync')).toBe(2)
      expect(await tb.sync.pull(first.cursor)).toEqual({ changes: [], cursor: expect.any(String) })

      await tb.tasks.update(tasks[0]!.id, { completed: true })
      await tb.tasks.delete(tasks[1]!.id)
      const next = await tb.sync.pull(first.cursor)
      expect(next.changes).toEqual([
        { type: 'task', op: 'upsert', task: expect.objectContaining({ id: tasks[0]!.id, completed: true }) },
        { type: 'task', op: 'delete', id: tasks[1]!.id, deletedAt: expect.any(String) },
      ])
      expect((await tb.sync.pull(next.cursor)).changes).toEqual([])
    })

    it('rejects a cursor older than the change log keeps with 410 sync-expired', async () => {
      const { tb, session } = await signedIn()
      const error = await rejection(tb.sync.pull(await oldCursor(session.user.id)))
      expect(error).toMatchObject({ status: 410, type: ProblemType.syncExpired })
    })
  })

  /** A real cursor for `userId`, minted 31 days ago (the server keeps 30). */
  async function oldCursor (userId: string) {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 31 * 86_400_000 })
    try {
      return syncCursors(t.keys.secret, 0).mint(userId, { seq: 0 })
    } finally {
      vi.useRealTimers()
    }
  }

  describe('events', () => {
    /** Subscribes `tb`, collecting changes and errors; closed in afterAll if the test does not. */
    const listen = (tb: TaskbaseClient, since?: string) => {
      const changes: Array<{ change: Change, cursor: string }> = []
      const errors: unknown[] = []
      const subscription = tb.events.subscribe({
        since,
        retryMs: 50,
        onChange: (change, cursor) => { changes.push({ change, cursor }) },
        onError: (error) => errors.push(error),
      })
      subscriptions.push(subscription)
      return { changes, errors, subscription }
    }
    const described = (changes: Array<{ change: Change }>) =>
      changes.map(({ change }) => change.op === 'delete' ? `delete ${change.id}`
        : change.type === 'task' ? `upsert ${change.task.title}` : change.type === 'project' ? `project ${change.project.name}` : `reminder ${change.op}`)

    it('delivers changes made through the API, and resumes with Last-Event-ID after a dropped connection', async () => {
      const { tb, recorder } = await signedIn()
      const { cursor } = await tb.sync.pull()
      const { changes, errors, subscription } = listen(tb, cursor)

      const first = await tb.tasks.create({ title: 'first' })
      await vi.waitFor(() => expect(described(changes)).toEqual(['upsert first']), within)
      expect(subscription.lastEventId).toBe(changes[0]!.cursor)

      recorder.cutStreams()
      await tb.tasks.create({ title: 'made while away' })
      await tb.tasks.delete(first.id)
      await sleep(200) // past the retry delay: the reconnection is waiting at the cut
      recorder.resume()

      await vi.waitFor(() => expect(described(changes)).toEqual(['upsert first', 'upsert made while away', `delete ${first.id}`]), within)
      const reconnects = recorder.sent.filter((r) => r.path === '/api/v1/events').slice(1)
      expect(reconnects.length).toBeGreaterThan(0)
      expect(reconnects.every((r) => r.lastEventId === changes[0]!.cursor)).toBe(true)
      expect(errors).toEqual([])

      subscription.close()
      const opened = recorder.count('GET', '/api/v1/events')
      await tb.tasks.create({ title: 'after close' })
      await sleep(300)
      expect(changes).toHaveLength(3)
      expect(recorder.count('GET', '/api/v1/events')).toBe(opened)
    })

    it('delivers project changes as well, in the shape of a sync page', async () => {
      const { tb } = await signedIn()
      const { cursor } = await tb.sync.pull()
      const { changes, errors } = listen(tb, cursor)
      const project = await tb.projects.create({ name: 'Errands' })
      await vi.waitFor(() => expect(changes.map(({ change }) => change)).toEqual([
        { type: 'project', op: 'upsert', project: expect.objectContaining({ id: project.id, name: 'Errands' }) },
      ]), within)
      const task = await tb.tasks.create({ title: 'Milk', projectId: project.id })
      await tb.projects.delete(project.id)
      // The task's deletion comes with its project's, each with its own tombstone. (The stream sends
      // each latest state: the task's upsert may be skipped when the deletion came before the read.)
      await vi.waitFor(() => expect(changes.slice(1).filter(({ change }) => change.op === 'delete').map(({ change }) => change))
        .toEqual(expect.arrayContaining([
          { type: 'project', op: 'delete', id: project.id, deletedAt: expect.any(String) },
          { type: 'task', op: 'delete', id: task.id, deletedAt: expect.any(String) },
        ])), within)
      expect(errors).toEqual([])
    })

    it('renews the session on reauth and goes on from the last event', async () => {
      const { tb, recorder, session } = await signedIn()
      const { sub, sid } = claimsOf(session.accessToken)
      // The stream ends with `reauth` when the token it was opened with expires: in two to three seconds.
      const shortLived = await signAccessToken({ ...t.keys, accessTokenTtlSeconds: 3 }, sub, sid)
      tb.auth.setSession({ ...session, accessToken: shortLived })
      const { changes, errors } = listen(tb, (await tb.sync.pull()).cursor)
      await tb.tasks.create({ title: 'before expiry' })
      await vi.waitFor(() => expect(described(changes)).toEqual(['upsert before expiry']), within)

      await vi.waitFor(() => expect(recorder.count('POST', '/api/v1/auth/refresh')).toBe(1), within)
      await vi.waitFor(() => expect(recorder.count('GET', '/api/v1/events')).toBe(2), within)
      await tb.tasks.create({ title: 'after renewal' })
      await vi.waitFor(() => expect(described(changes)).toEqual(['upsert before expiry', 'upsert after renewal']), within)
      const [opened, reopened] = recorder.sent.filter((r) => r.path === '/api/v1/events')
      expect(opened).toMatchObject({ status: 200 }) // opened with the short-lived token: the stream ended, not a 401
      expect(reopened).toMatchObject({ status: 200, lastEventId: changes[0]!.cursor })
      expect(errors).toEqual([])
    })

    it('stops with onError for a cursor too old to resume from', async () => {
      const { tb, session, recorder } = await signedIn()
      const { errors, subscription } = listen(tb, await oldCursor(session.user.id))
      await vi.waitFor(() => expect(errors).toHaveLength(1), within)
      expect(errors[0]).toMatchObject({ status: 410, type: ProblemType.syncExpired })
      await sleep(200)
      expect(recorder.count('GET', '/api/v1/events')).toBe(1)
      subscription.close()
    })
  })
})
