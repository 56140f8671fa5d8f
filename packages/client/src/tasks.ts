import type { Client } from 'openapi-fetch'
import { dataOf } from './errors.js'
import type { paths } from './openapi.js'
import type { Completion, CompletionPage, CompletionQuery, CreateTaskBody, MoveTaskBody, Task, TaskPage, TaskQuery, UpdateTaskBody } from './types.js'

/**
 * The ETag the server gives a task, `"<version>-<first 8 characters of the id>"` (a documented
 * format), so a task read from a list or a sync can condition a write without reading it again.
 */
export const etagOf = (task: Pick<Task, 'id' | 'version'>) => `"${task.version}-${task.id.slice(0, 8)}"`

export interface ConditionalOptions {
  /**
   * Change the task only if nobody else has since: its ETag, or the task as you read it. When it
   * has changed, the call rejects with a 412 TaskbaseError (`ProblemType.preconditionFailed`) and
   * nothing changes.
   */
  ifMatch?: string | Pick<Task, 'id' | 'version'>
}

export interface CreateOptions {
  /** Any unique string: retrying with it returns the first answer instead of a second task. */
  idempotencyKey?: string
}

export interface TaskMethods {
  /** One page; pass its `nextCursor` as `cursor` for the next. */
  list (query?: TaskQuery): Promise<TaskPage>
  get (id: string): Promise<Task>
  create (body: CreateTaskBody, options?: CreateOptions): Promise<Task>
  update (id: string, changes: UpdateTaskBody, options?: ConditionalOptions): Promise<Task>
  delete (id: string, options?: ConditionalOptions): Promise<void>
  /**
   * Puts the task, with its subtasks, in another project, under another parent, or elsewhere among
   * its siblings (`beforeId` / `afterId`); `{}` makes it last where it is.
   */
  move (id: string, to: MoveTaskBody, options?: ConditionalOptions): Promise<Task>
  /** Every page of the list, fetched as the loop reaches it. */
  pages (query?: TaskQuery): AsyncIterable<TaskPage>
  /** Every task of the list, page after page (`limit` is the page size), fetched as the loop reaches it. */
  listAll (query?: TaskQuery): AsyncIterable<Task>
  /** One page of a recurring task's history, newest first; pass its `nextCursor` as `cursor` for the next. */
  completions (id: string, query?: CompletionQuery): Promise<CompletionPage>
  /** The whole history of a recurring task, newest first, fetched a page at a time as the loop reaches it. */
  allCompletions (id: string, query?: Omit<CompletionQuery, 'cursor'>): AsyncIterable<Completion>
  /** The task's next due dates (1-50, 10 by default): its current dueAt first, then, if it repeats, the ones after it. */
  occurrences (id: string, options?: { limit?: number }): Promise<string[]>
  /**
   * Moves a recurring task to its next occurrence without recording a completion. A task that does
   * not repeat rejects with a 409 (`ProblemType.notRepeating`).
   */
  skip (id: string, options?: ConditionalOptions): Promise<Task>
}

export const ifMatchHeader = ({ ifMatch }: ConditionalOptions) =>
  ifMatch === undefined ? undefined : { 'if-match': typeof ifMatch === 'string' ? ifMatch : etagOf(ifMatch) }

export function taskMethods (api: Client<paths>): TaskMethods {
  const list = (query: TaskQuery = {}) => dataOf(api.GET('/api/v1/tasks', { params: { query } }))
  const completions = (id: string, query: CompletionQuery = {}) =>
    dataOf(api.GET('/api/v1/tasks/{id}/completions', { params: { path: { id }, query } }))

  async function * pages (query: TaskQuery = {}) {
    let cursor = query.cursor
    do {
      const page = await list(cursor === undefined ? query : { ...query, cursor })
      yield page
      cursor = page.nextCursor ?? undefined
    } while (cursor !== undefined)
  }

  return {
    list,
    get: (id) => dataOf(api.GET('/api/v1/tasks/{id}', { params: { path: { id } } })),
    create: (body, { idempotencyKey } = {}) => dataOf(api.POST('/api/v1/tasks', {
      params: { header: idempotencyKey === undefined ? undefined : { 'idempotency-key': idempotencyKey } },
      body,
    })),
    update: (id, changes, options = {}) => dataOf(api.PATCH('/api/v1/tasks/{id}', {
      params: { path: { id }, header: ifMatchHeader(options) },
      body: changes,
    })),
    async delete (id, options = {}) {
      await dataOf(api.DELETE('/api/v1/tasks/{id}', { params: { path: { id }, header: ifMatchHeader(options) } }))
    },
    move: (id, to, options = {}) => dataOf(api.POST('/api/v1/tasks/{id}/move', {
      params: { path: { id }, header: ifMatchHeader(options) },
      body: to,
    })),
    pages,
    async * listAll (query) {
      for await (const page of pages(query)) yield * page.items
    },
    completions,
    async * allCompletions (id, query = {}) {
      let cursor: string | undefined
      do {
        const page = await completions(id, cursor === undefined ? query : { ...query, cursor })
        yield * page.items
        cursor = page.nextCursor ?? undefined
      } while (cursor !== undefined)
    },
    async occurrences (id, { limit } = {}) {
      const { items } = await dataOf(api.GET('/api/v1/tasks/{id}/occurrences', { params: { path: { id }, query: limit === undefined ? {} : { limit } } }))
      return items.map((item) => item.dueAt)
    },
    skip: (id, options = {}) => dataOf(api.POST('/api/v1/tasks/{id}/skip', { params: { path: { id }, header: ifMatchHeader(options) } })),
  }
}
