import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { MAX_PAGE_BYTES } from '../http/page-size.js'
import { problemErrorHandler } from '../http/errors.js'
import { forbidden, notFound, Problem } from '../http/problem.js'
import { errorResponses, sendEmpty } from '../http/schemas.js'
import type { TaskQueries } from '../tasks/queries.js'
import type { ListTasksQuery } from '../tasks/schemas.js'
import {
  ClassicCreateBody, ClassicListQuery, ClassicReplaceBody, ClassicTaskJson, ClassicTaskParams, ClassicUserParams,
  toClassicTaskJson,
} from './schemas.js'

type ClassicRequest = { params: { user_id: string }, userId: string, authSubject: string | undefined }

/** `/api/v1/...` belongs to the v1 API: no classic route takes "v1" as its `{user_id}`. */
export const isReservedUserId = (params: Record<string, string | undefined>) => params.user_id === 'v1'

const FOREIGN_PATH: [number, string] = [403, 'The user_id in the path is not the signed-in user']
const INVALID: [number, string] = [422, 'Invalid input (this contract\'s 400): errors names each field; an unknown field\'s detail lists the fields the route accepts']

const SORT_KEYS = { created: 'createdAt', due_date: 'dueAt', priority: 'priority', title: 'title' } as const

/** The classic list's query in v1's words: the same filters, and `sort` with `order` as one `sort`. */
function toListQuery (query: ClassicListQuery): ListTasksQuery {
  const { status = 'all', search, priority, tag, due_before: dueBefore, due_after: dueAfter, sort = 'created', order, limit = 1000 } = query
  const descending = (order ?? (sort === 'created' ? 'desc' : 'asc')) === 'desc'
  return {
    completed: status === 'all' ? undefined : status === 'completed',
    q: search,
    priority,
    tag,
    dueBefore,
    dueAfter,
    sort: `${descending ? '-' : ''}${SORT_KEYS[sort]}` as ListTasksQuery['sort'],
    limit,
  }
}

/** The task queries name v1's fields; this contract calls dueAt due_date. */
async function inClassicTerms<T> (work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (!(error instanceof Problem) || !error.errors?.some((e) => e.path === 'body.dueAt')) throw error
    const errors = error.errors.map((e) => e.path === 'body.dueAt' ? { ...e, path: 'body.due_date' } : e)
    throw new Problem(error.status, error.detail.replaceAll('dueAt', 'due_date'), { type: error.type, errors, headers: error.headers })
  }
}

export interface ClassicRoutesOptions {
  tasks: TaskQueries
}

/**
 * `/api/{user_id}/tasks`: the backend contract many existing todo front ends were written against,
 * served beside /api/v1 over the same tasks. Must be registered inside the signed-in scope.
 */
export const classicRoutes: FastifyPluginAsyncTypebox<ClassicRoutesOptions> = async (app, { tasks }) => {
  // That contract reports invalid input as 422.
  app.setErrorHandler(problemErrorHandler(422))

  /** True when the path's user is the caller, by our id or by the identity provider's `sub`. */
  const namesCaller = (request: ClassicRequest) =>
    request.params.user_id === request.userId || request.params.user_id === request.authSubject
  // Checked before the body is: someone else's path is a 403 whatever the body holds.
  app.addHook('preValidation', async (request) => {
    if (!namesCaller(request as unknown as ClassicRequest)) {
      throw forbidden('The user_id in the path is not the signed-in user')
    }
  })
  /** The owner of the path's tasks: the caller (the hook above refused anyone else). */
  const ownerOf = (request: ClassicRequest): string => request.userId
  const present = (request: ClassicRequest) =>
    (task: Parameters<typeof toClassicTaskJson>[0]) => toClassicTaskJson(task, request.params.user_id)
  const classic = { tags: ['classic'] }

  app.get('/:user_id/tasks', {
    schema: {
      ...classic,
      operationId: 'classicListTasks', summary: 'List your tasks (classic contract)',
      params: ClassicUserParams,
      querystring: ClassicListQuery,
      response: { 200: Type.Array(ClassicTaskJson), ...errorResponses(401, FOREIGN_PATH, INVALID) },
    },
  }, async (request) => {
    // No cursor in this contract: the first tasks that fit in a page of MAX_PAGE_BYTES.
    const page = await tasks.list(ownerOf(request), toListQuery(request.query), { readBytes: MAX_PAGE_BYTES })
    return page.items.map(present(request))
  })

  app.post('/:user_id/tasks', {
    schema: {
      ...classic,
      operationId: 'classicCreateTask', summary: 'Create a task (classic contract)',
      params: ClassicUserParams,
      body: ClassicCreateBody,
      response: { 201: ClassicTaskJson, ...errorResponses(401, FOREIGN_PATH, [409, 'The account holds TASKS_PER_USER_MAX tasks already (type task-limit-reached)'], INVALID) },
    },
  }, async (request, reply) => {
    const { due_date: dueAt, ...fields } = request.body
    const task = await inClassicTerms(() => tasks.create(ownerOf(request), { ...fields, dueAt }))
    return reply.code(201).send(present(request)(task))
  })

  app.get('/:user_id/tasks/:id', {
    schema: {
      ...classic,
      operationId: 'classicGetTask', summary: 'Get a task (classic contract)',
      params: ClassicTaskParams,
      response: { 200: ClassicTaskJson, ...errorResponses(401, FOREIGN_PATH, 404, INVALID) },
    },
  }, async (request) => {
    const task = await tasks.find(ownerOf(request), request.params.id)
    if (!task) throw notFound('task')
    return present(request)(task)
  })

  app.put('/:user_id/tasks/:id', {
    schema: {
      ...classic,
      operationId: 'classicReplaceTask', summary: 'Replace a task: every field, omitted ones cleared (classic contract)',
      params: ClassicTaskParams,
      body: ClassicReplaceBody,
      response: { 200: ClassicTaskJson, ...errorResponses(401, FOREIGN_PATH, 404, INVALID) },
    },
  }, async (request) => {
    // A replacement: every field the body leaves out is cleared (the due date of a recurring task
    // excepted, and its series: see tasks.replace).
    const { title, description = null, completed = false, priority = 'none', tags = [], due_date: dueAt, recurrence, reminders } = request.body
    const task = await inClassicTerms(() =>
      tasks.replace(ownerOf(request), request.params.id, { title, description, completed, priority, tags, dueAt, recurrence, reminders }))
    return present(request)(task)
  })

  app.patch('/:user_id/tasks/:id/complete', {
    schema: {
      ...classic,
      operationId: 'classicToggleTask', summary: 'Toggle completion (classic contract)',
      description: 'On an open recurring task, completes the current occurrence: due_date moves to the next and the task stays open.',
      params: ClassicTaskParams,
      response: { 200: ClassicTaskJson, ...errorResponses(401, FOREIGN_PATH, 404, INVALID) },
    },
  }, async (request) => {
    const task = await tasks.toggle(ownerOf(request), request.params.id)
    return present(request)(task)
  })

  app.delete('/:user_id/tasks/:id', {
    schema: {
      ...classic,
      operationId: 'classicDeleteTask', summary: 'Delete a task (classic contract)',
      params: ClassicTaskParams,
      response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses(401, FOREIGN_PATH, 404, INVALID) },
    },
  }, async (request, reply) => {
    await tasks.delete(ownerOf(request), request.params.id)
    return sendEmpty(reply, 204)
  })
}
