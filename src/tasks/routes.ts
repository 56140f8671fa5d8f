import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { FastifyReply } from 'fastify'
import { etagOf, ifMatchVersions, noneMatchHits } from '../http/conditional.js'
import { sendCreated } from '../http/created.js'
import { notFound } from '../http/problem.js'
import { errorResponses, IdempotencyHeaders, sendEmpty } from '../http/schemas.js'
import { CompletionPageJson, CompletionsQuery, OccurrencesJson, OccurrencesQuery } from '../recurrence/schemas.js'
import type { TaskQueries } from './queries.js'
import type { TaskTree } from './tree.js'
import {
  CreateTaskBody, ListTasksQuery, MoveTaskBody, TaskJson, TaskPageJson, TaskParams, UpdateTaskBody,
} from './schemas.js'

export interface TaskRoutesOptions {
  tasks: TaskQueries
  tree: TaskTree
}

const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ description: 'An ETag of the task: the write happens only if it is still current' })),
})

export const taskRoutes: FastifyPluginAsyncTypebox<TaskRoutesOptions> = async (app, { tasks, tree }) => {
  app.get('/tasks', {
    schema: {
      tags: ['tasks'],
      operationId: 'listTasks', summary: 'List your tasks',
      description: 'Filters combine with AND. Keyset pagination: pass nextCursor as cursor, with the same sort.',
      querystring: ListTasksQuery,
      response: { 200: TaskPageJson, ...errorResponses([400, 'A filter, the sort, the limit or the cursor is invalid; errors names it'], 401) },
    },
  }, async (request) => {
    return tasks.list(request.userId, request.query)
  })

  app.post('/tasks', {
    schema: {
      tags: ['tasks'],
      operationId: 'createTask', summary: 'Create a task',
      headers: IdempotencyHeaders,
      body: CreateTaskBody,
      response: {
        201: TaskJson,
        ...errorResponses(400, 401, [404, 'projectId or parentId names a project or task that is not yours (errors names the field)'],
          [409, 'The account holds TASKS_PER_USER_MAX tasks already (type task-limit-reached), or the parent is as deep as tasks go (type too-deep)'],
          [422, 'This Idempotency-Key was used before with another body (type idempotency-key-reused)']),
      },
    },
  }, async (request, reply) => {
    const { userId, body } = request
    return sendCreated(reply as FastifyReply, '/api/v1/tasks', request.headers['idempotency-key'],
      () => tasks.create(userId, body), (key) => tasks.createIdempotent(userId, key, body))
  })

  app.get('/tasks/:id', {
    schema: {
      tags: ['tasks'],
      operationId: 'getTask', summary: 'Get a task',
      params: TaskParams,
      headers: Type.Object({ 'if-none-match': Type.Optional(Type.String()) }),
      response: { 200: TaskJson, 304: Type.Null({ description: 'Not modified' }), ...errorResponses(400, 401, 404) },
    },
  }, async (request, reply) => {
    const task = await tasks.find(request.userId, request.params.id)
    if (!task) throw notFound('task')
    const etag = etagOf(task.id, task.version)
    reply.header('etag', etag)
    if (noneMatchHits(request.headers['if-none-match'], etag)) return sendEmpty(reply, 304)
    return task
  })

  app.patch('/tasks/:id', {
    schema: {
      tags: ['tasks'],
      operationId: 'updateTask', summary: 'Change some fields of a task',
      description: 'completed: true sets completedAt (kept if already set); false clears it. On a recurring task, completed: true ' +
        'completes the current occurrence instead: it is recorded in the history, dueAt moves to the next occurrence, and the task ' +
        'stays open (with If-Match, only the occurrence the client saw). Once COUNT or UNTIL is used up, the task completes for good.',
      params: TaskParams,
      headers: IfMatchHeaders,
      body: UpdateTaskBody,
      response: { 200: TaskJson, ...errorResponses(400, 401, 404, 412) },
    },
  }, async (request, reply) => {
    const { userId, params: { id } } = request
    const task = await tasks.update(userId, id, request.body, ifMatchVersions(request.headers['if-match'], id))
    return reply.header('etag', etagOf(task.id, task.version)).send(task)
  })

  app.delete('/tasks/:id', {
    schema: {
      tags: ['tasks'],
      operationId: 'deleteTask', summary: 'Delete a task',
      params: TaskParams,
      headers: IfMatchHeaders,
      response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses(400, 401, 404, 412) },
    },
  }, async (request, reply) => {
    const { userId, params: { id } } = request
    await tasks.delete(userId, id, ifMatchVersions(request.headers['if-match'], id))
    return sendEmpty(reply, 204)
  })

  app.get('/tasks/:id/completions', {
    schema: {
      tags: ['tasks'],
      operationId: 'listTaskCompletions', summary: 'The occurrences of a recurring task that were completed',
      description: 'Newest first, keyset paged: pass nextCursor as cursor. Each completion of a recurring task leaves one, kept while ' +
        'the task advances and deleted with it. A task that does not repeat has none.',
      params: TaskParams,
      querystring: CompletionsQuery,
      response: { 200: CompletionPageJson, ...errorResponses([400, 'The limit or the cursor is invalid; errors names it'], 401, 404) },
    },
  }, async (request) => {
    const page = await tasks.completions(request.userId, request.params.id, request.query)
    if (!page) throw notFound('task')
    return page
  })

  app.get('/tasks/:id/occurrences', {
    schema: {
      tags: ['tasks'],
      operationId: 'listTaskOccurrences', summary: 'The next due dates of a task',
      description: 'The current dueAt, then, for a recurring task, the occurrences after it (as if each were completed on time) until ' +
        'COUNT or UNTIL ends the series.',
      params: TaskParams,
      querystring: OccurrencesQuery,
      response: { 200: OccurrencesJson, ...errorResponses([400, 'The limit is invalid'], 401, 404) },
    },
  }, async (request) => {
    const dates = await tasks.occurrences(request.userId, request.params.id, request.query.limit ?? 10)
    if (!dates) throw notFound('task')
    return { items: dates.map((dueAt) => ({ dueAt })) }
  })

  app.post('/tasks/:id/skip', {
    schema: {
      tags: ['tasks'],
      operationId: 'skipTaskOccurrence', summary: 'Move a recurring task to its next occurrence without completing this one',
      description: 'Nothing is recorded in the history; subtasks completed for this occurrence are reopened. Skipping the last ' +
        'occurrence (COUNT or UNTIL used up) ends the series: the task completes for good.',
      params: TaskParams,
      headers: IfMatchHeaders,
      response: {
        200: TaskJson,
        ...errorResponses(400, 401, 404, [409, 'The task does not repeat, or its series is over (type not-repeating)'], 412),
      },
    },
  }, async (request, reply) => {
    const { userId, params: { id } } = request
    const task = await tasks.skip(userId, id, ifMatchVersions(request.headers['if-match'], id))
    return reply.header('etag', etagOf(task.id, task.version)).send(task)
  })

  app.post('/tasks/:id/move', {
    schema: {
      tags: ['tasks'],
      operationId: 'moveTask',
      summary: 'Move a task, with its subtasks, to another project, parent or place',
      description: 'One transaction: the task and every task under it follow into the new project. Each moved task is a change in sync.',
      params: TaskParams,
      headers: IfMatchHeaders,
      body: MoveTaskBody,
      response: {
        200: TaskJson,
        ...errorResponses([400, 'A beforeId/afterId that is not a sibling at the destination (or not adjacent), or a projectId that is not the parent\'s'],
          401, [404, 'The task, or a task or project the body names, is not yours'],
          [409, 'Under itself or one of its own subtasks (type cycle), or deeper than four levels (type too-deep)'], 412),
      },
    },
  }, async (request, reply) => {
    const { userId, params: { id } } = request
    const task = await tree.move(userId, id, request.body, ifMatchVersions(request.headers['if-match'], id))
    return reply.header('etag', etagOf(task.id, task.version)).send(task)
  })
}
