import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { MAX_PAGE_BYTES } from '../http/page-size.js'
import { notFound, Problem, problemErrorHandler } from '../http/problem.js'
import { errorResponses, sendEmpty } from '../http/schemas.js'
import type { TaskQueries } from '../tasks/queries.js'
import {
  ClassicCreateBody, ClassicListQuery, ClassicReplaceBody, ClassicTaskJson, ClassicTaskParams, ClassicUserParams,
  toClassicTaskJson,
} from './schemas.js'

type ClassicRequest = { params: { user_id: string }, userId: string, authSubject: string | undefined }

/** `/api/v1/...` belongs to the v1 API: no classic route takes "v1" as its `{user_id}`. */
export const isReservedUserId = (params: Record<string, string | undefined>) => params.user_id === 'v1'

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
      throw new Problem(403, 'The user_id in the path is not the signed-in user')
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
      summary: 'List your tasks (classic contract)',
      params: ClassicUserParams,
      querystring: ClassicListQuery,
      response: { 200: Type.Array(ClassicTaskJson), ...errorResponses(401, 403, 422) },
    },
  }, async (request) => {
    const userId = ownerOf(request)
    const { status = 'all', limit = 1000 } = request.query
    const completed = status === 'all' ? undefined : status === 'completed'
    // No cursor in this contract: the newest tasks that fit in a page of MAX_PAGE_BYTES.
    const page = await tasks.list(userId, { completed, limit, sort: '-createdAt' }, { readBytes: MAX_PAGE_BYTES })
    return page.items.map(present(request))
  })

  app.post('/:user_id/tasks', {
    schema: {
      ...classic,
      summary: 'Create a task (classic contract)',
      params: ClassicUserParams,
      body: ClassicCreateBody,
      response: { 201: ClassicTaskJson, ...errorResponses(401, 403, 409, 422) },
    },
  }, async (request, reply) => {
    const userId = ownerOf(request)
    const task = await tasks.create(userId, request.body)
    return reply.code(201).send(present(request)(task))
  })

  app.get('/:user_id/tasks/:id', {
    schema: {
      ...classic,
      summary: 'Get a task (classic contract)',
      params: ClassicTaskParams,
      response: { 200: ClassicTaskJson, ...errorResponses(401, 403, 404, 422) },
    },
  }, async (request) => {
    const task = await tasks.find(ownerOf(request), request.params.id)
    if (!task) throw notFound('task')
    return present(request)(task)
  })

  app.put('/:user_id/tasks/:id', {
    schema: {
      ...classic,
      summary: 'Replace title, description and completed (classic contract)',
      params: ClassicTaskParams,
      body: ClassicReplaceBody,
      response: { 200: ClassicTaskJson, ...errorResponses(401, 403, 404, 422) },
    },
  }, async (request) => {
    const { title, description = null, completed = false } = request.body
    const result = await tasks.update(ownerOf(request), request.params.id, { title, description, completed })
    if (result.status !== 'ok') throw notFound('task')
    return present(request)(result.value)
  })

  app.patch('/:user_id/tasks/:id/complete', {
    schema: {
      ...classic,
      summary: 'Toggle completion (classic contract)',
      params: ClassicTaskParams,
      response: { 200: ClassicTaskJson, ...errorResponses(401, 403, 404, 422) },
    },
  }, async (request) => {
    const task = await tasks.toggle(ownerOf(request), request.params.id)
    if (!task) throw notFound('task')
    return present(request)(task)
  })

  app.delete('/:user_id/tasks/:id', {
    schema: {
      ...classic,
      summary: 'Delete a task (classic contract)',
      params: ClassicTaskParams,
      response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses(401, 403, 404, 422) },
    },
  }, async (request, reply) => {
    const result = await tasks.delete(ownerOf(request), request.params.id)
    if (result.status !== 'ok') throw notFound('task')
    return sendEmpty(reply, 204)
  })
}
