import type { Client } from 'openapi-fetch'
import { dataOf } from './errors.js'
import type { paths } from './openapi.js'
import { ifMatchHeader, type ConditionalOptions, type CreateOptions } from './tasks.js'
import type { CreateProjectBody, MoveProjectBody, Project, ProjectPage, ProjectQuery, UpdateProjectBody } from './types.js'

export interface ProjectMethods {
  /** One page, in the user's order; pass its `nextCursor` as `cursor` for the next. Archived ones with `archived: true`. */
  list (query?: ProjectQuery): Promise<ProjectPage>
  get (id: string): Promise<Project>
  /** A new project, last in the order; with `idempotencyKey`, a retry returns it instead of a second one. */
  create (body: CreateProjectBody, options?: CreateOptions): Promise<Project>
  update (id: string, changes: UpdateProjectBody, options?: ConditionalOptions): Promise<Project>
  /** Deletes the project and every task in it. */
  delete (id: string, options?: ConditionalOptions): Promise<void>
  /** Puts the project just before `beforeId` or just after `afterId`; `{}` makes it last. */
  move (id: string, to: MoveProjectBody, options?: ConditionalOptions): Promise<Project>
  /** Every project of the list, page after page, fetched as the loop reaches it. */
  listAll (query?: ProjectQuery): AsyncIterable<Project>
}

export function projectMethods (api: Client<paths>): ProjectMethods {
  const list = (query: ProjectQuery = {}) => dataOf(api.GET('/api/v1/projects', { params: { query } }))
  return {
    list,
    get: (id) => dataOf(api.GET('/api/v1/projects/{id}', { params: { path: { id } } })),
    create: (body, { idempotencyKey } = {}) => dataOf(api.POST('/api/v1/projects', {
      params: { header: idempotencyKey === undefined ? undefined : { 'idempotency-key': idempotencyKey } },
      body,
    })),
    update: (id, changes, options = {}) => dataOf(api.PATCH('/api/v1/projects/{id}', {
      params: { path: { id }, header: ifMatchHeader(options) },
      body: changes,
    })),
    async delete (id, options = {}) {
      await dataOf(api.DELETE('/api/v1/projects/{id}', { params: { path: { id }, header: ifMatchHeader(options) } }))
    },
    move: (id, to, options = {}) => dataOf(api.POST('/api/v1/projects/{id}/move', {
      params: { path: { id }, header: ifMatchHeader(options) },
      body: to,
    })),
    async * listAll (query = {}) {
      let cursor = query.cursor
      do {
        const page = await list(cursor === undefined ? query : { ...query, cursor })
        yield * page.items
        cursor = page.nextCursor ?? undefined
      } while (cursor !== undefined)
    },
  }
}
