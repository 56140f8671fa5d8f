import { expect } from 'vitest'
import { expectProblem, type Account, type TestApp } from './helpers.js'

// ---------------------------------------------------------------------------------------------
// Acting on projects and tasks through HTTP, for the tests of projects, subtasks and moves.
// ---------------------------------------------------------------------------------------------

export type Json = Record<string, any>
export type Query = Record<string, string | number | boolean>

export const MISSING_ID = '00000000-0000-4000-8000-000000000000'

export const PROBLEM = {
  preconditionFailed: 'urn:problem-type:taskbase:precondition-failed',
  projectLimit: 'urn:problem-type:taskbase:project-limit-reached',
  tooDeep: 'urn:problem-type:taskbase:too-deep',
  cycle: 'urn:problem-type:taskbase:cycle',
} as const

export const COLORS = ['red', 'orange', 'yellow', 'green', 'teal', 'blue', 'purple', 'pink', 'grey'] as const

export const PROJECT_FIELDS = ['archived', 'color', 'createdAt', 'id', 'name', 'position', 'updatedAt', 'version']

/** The ETag the contract promises for a task or project: `"<version>-<first 8 chars of id>"`. */
export const etagOf = (entity: Json) => `"${entity.version}-${entity.id.slice(0, 8)}"`

/** Byte order of two position strings (UTF-8), as the contract defines it. */
export const compareBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))

/** `(position, id)` order: what `sort=position` and the project list promise. */
export const byPosition = (a: Json, b: Json) => compareBytes(a.position, b.position) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Asserts that `items` are in strictly increasing `(position, id)` order. */
export function expectPositionOrder (items: Json[]) {
  for (let i = 1; i < items.length; i++) {
    const [a, b] = [items[i - 1]!, items[i]!]
    expect(typeof a.position).toBe('string')
    expect(byPosition(a, b), `${a.id} (${a.position}) before ${b.id} (${b.position})`).toBeLessThan(0)
  }
}

export const ids = (items: Json[]) => items.map((item) => item.id as string)
export const sorted = (values: string[]) => [...values].sort()

/** The paths a problem's errors name. */
export const pathsOf = (problem: Json): string[] => (problem.errors ?? []).map((e: { path: string }) => e.path)

/** What a client can tell of a 404: everything but the request id, with the asked id blanked out. */
export const sameProblem = (problem: Json, askedId: string) => ({
  type: problem.type,
  title: problem.title,
  status: problem.status,
  detail: String(problem.detail).split(askedId).join('<id>'),
  errors: JSON.stringify(problem.errors ?? []).split(askedId).join('<id>'),
})

export function queryString (query: Query): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) params.append(name, String(value))
  const text = params.toString()
  return text ? `?${text}` : ''
}

export interface SyncPage { changes: Json[], cursor: string, hasMore: boolean }

/** The routes this feature adds, bound to one test app. */
export function api (t: TestApp) {
  const call = (account: Account, method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    t.inject({ method, url, headers: { ...account.headers, ...headers }, ...(payload === undefined ? {} : { payload: payload as any }) })

  const ok = async (what: string, status: number, res: { statusCode: number, body: string, json: () => any }) => {
    if (res.statusCode !== status) throw new Error(`${what}: expected ${status}, got ${res.statusCode} ${res.body}`)
    return res.json()
  }

  const self = {
    call,

    async createProject (account: Account, payload: Json = {}): Promise<Json> {
      const res = await call(account, 'POST', '/api/v1/projects', { name: `Project ${Math.random().toString(36).slice(2, 8)}`, ...payload })
      return ok('create project', 201, res)
    },

    async readProject (account: Account, id: string): Promise<Json> {
      return ok('read project', 200, await call(account, 'GET', `/api/v1/projects/${id}`))
    },

    async patchProject (account: Account, id: string, payload: Json): Promise<Json> {
      return ok('patch project', 200, await call(account, 'PATCH', `/api/v1/projects/${id}`, payload))
    },

    moveProject: (account: Account, id: string, payload: Json, headers: Record<string, string> = {}) =>
      call(account, 'POST', `/api/v1/projects/${id}/move`, payload, headers),

    async movedProject (account: Account, id: string, payload: Json): Promise<Json> {
      return ok('move project', 200, await self.moveProject(account, id, payload))
    },

    /** Every project of one list (`archived=false` by default), following nextCursor. */
    async listProjects (account: Account, query: Query = {}, limit = 100): Promise<Json[]> {
      const seen: Json[] = []
      let cursor: string | null = null
      for (let pages = 0; pages < 200; pages++) {
        const res = await call(account, 'GET', `/api/v1/projects${queryString({ ...query, limit, ...(cursor ? { cursor } : {}) })}`)
        const page = await ok('list projects', 200, res)
        expect(page.items.length).toBeLessThanOrEqual(limit)
        seen.push(...page.items)
        cursor = page.nextCursor
        if (cursor === null) return seen
      }
      throw new Error('project pagination does not end')
    },

    /** Both lists: every project of the user. */
    async allProjects (account: Account): Promise<Json[]> {
      return [...await self.listProjects(account, { archived: false }), ...await self.listProjects(account, { archived: true })]
    },

    async createTask (account: Account, payload: Json): Promise<Json> {
      return t.createTask(account, payload)
    },

    async readTask (account: Account, id: string): Promise<Json> {
      return ok('read task', 200, await call(account, 'GET', `/api/v1/tasks/${id}`))
    },

    async patchTask (account: Account, id: string, payload: Json): Promise<Json> {
      return ok('patch task', 200, await call(account, 'PATCH', `/api/v1/tasks/${id}`, payload))
    },

    moveTask: (account: Account, id: string, payload: Json, headers: Record<string, string> = {}) =>
      call(account, 'POST', `/api/v1/tasks/${id}/move`, payload, headers),

    async movedTask (account: Account, id: string, payload: Json): Promise<Json> {
      return ok('move task', 200, await self.moveTask(account, id, payload))
    },

    /** Every task matching `query`, following nextCursor. */
    async listTasks (account: Account, query: Query = {}, limit = 100): Promise<Json[]> {
      const seen: Json[] = []
      let cursor: string | null = null
      for (let pages = 0; pages < 500; pages++) {
        const res = await call(account, 'GET', `/api/v1/tasks${queryString({ ...query, limit, ...(cursor ? { cursor } : {}) })}`)
        const page = await ok(`list tasks ${JSON.stringify(query)}`, 200, res)
        expect(page.items.length).toBeLessThanOrEqual(limit)
        seen.push(...page.items)
        cursor = page.nextCursor
        if (cursor === null) return seen
      }
      throw new Error('task pagination does not end')
    },

    /** Ids of one sibling group in manual order. */
    async siblings (account: Account, projectId: string | null, parentId: string | null): Promise<string[]> {
      return ids(await self.listTasks(account, { sort: 'position', projectId: projectId ?? 'inbox', parentId: parentId ?? 'none' }))
    },

    /** The user's whole state, for "nothing changed" checks: every task and every project, by id. */
    async snapshot (account: Account): Promise<{ tasks: Json[], projects: Json[] }> {
      const tasks = (await self.listTasks(account)).sort((a, b) => (a.id < b.id ? -1 : 1))
      const projects = (await self.allProjects(account)).sort((a, b) => (a.id < b.id ? -1 : 1))
      return { tasks, projects }
    },

    /** One page of /sync. */
    async syncPage (account: Account, since?: string, limit = 1000): Promise<SyncPage> {
      const res = await call(account, 'GET', `/api/v1/sync${queryString({ limit, ...(since ? { since } : {}) })}`)
      return ok('sync', 200, res)
    },

    /** Follows hasMore to the end: every change, and the last cursor. */
    async syncAll (account: Account, since?: string, limit = 1000): Promise<{ changes: Json[], cursor: string, pages: SyncPage[] }> {
      const pages: SyncPage[] = []
      let cursor = since
      for (let i = 0; i < 500; i++) {
        const page = await self.syncPage(account, cursor, limit)
        pages.push(page)
        cursor = page.cursor
        if (!page.hasMore) return { changes: pages.flatMap((p) => p.changes), cursor, pages }
      }
      throw new Error('sync does not end')
    },

    /** Creates a chain of `levels` tasks, each the child of the previous; returns them top first. */
    async chain (account: Account, levels: number, projectId: string | null = null, prefix = 'level'): Promise<Json[]> {
      const tasks: Json[] = []
      for (let level = 1; level <= levels; level++) {
        const parent = tasks.at(-1)
        tasks.push(await t.createTask(account, parent ? { title: `${prefix} ${level}`, parentId: parent.id } : { title: `${prefix} ${level}`, projectId }))
      }
      return tasks
    },
  }
  return self
}

/** expectProblem, and that its errors name `path`. */
export function expectProblemAt (res: { statusCode: number, headers: Record<string, unknown>, json: () => any }, status: number, path: string): Json {
  const problem = expectProblem(res, status)
  expect(pathsOf(problem), JSON.stringify(problem)).toContain(path)
  return problem
}
