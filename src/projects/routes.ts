import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { FastifyReply } from 'fastify'
import { etagOf, ifMatchVersions, noneMatchHits } from '../http/conditional.js'
import { sendCreated } from '../http/created.js'
import { notFound } from '../http/problem.js'
import { errorResponses, IdempotencyHeaders, sendEmpty } from '../http/schemas.js'
import type { ProjectQueries } from './queries.js'
import {
  CreateProjectBody, ListProjectsQuery, MoveProjectBody, ProjectJson, ProjectPageJson, ProjectParams, UpdateProjectBody,
} from './schemas.js'

export interface ProjectRoutesOptions {
  projects: ProjectQueries
}

const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ description: 'An ETag of the project: the write happens only if it is still current' })),
})

const PROJECT_LIMIT: [number, string] = [409, 'The account holds PROJECTS_PER_USER_MAX projects already (type project-limit-reached)']

export const projectRoutes: FastifyPluginAsyncTypebox<ProjectRoutesOptions> = async (app, { projects }) => {
  const tags = ['projects']

  app.get('/projects', {
    schema: {
      tags,
      operationId: 'listProjects',
      summary: 'List your projects, in your order',
      description: 'Active projects by default; archived=true lists the archived ones. Keyset pagination: pass nextCursor as cursor.',
      querystring: ListProjectsQuery,
      response: { 200: ProjectPageJson, ...errorResponses([400, 'archived, limit or cursor is invalid'], 401) },
    },
  }, async (request) => projects.list(request.userId, request.query))

  app.post('/projects', {
    schema: {
      tags,
      operationId: 'createProject',
      summary: 'Create a project (placed last)',
      headers: IdempotencyHeaders,
      body: CreateProjectBody,
      response: { 201: ProjectJson, ...errorResponses(400, 401, PROJECT_LIMIT, [422, 'This Idempotency-Key was used before with another body (type idempotency-key-reused)']) },
    },
  }, async (request, reply) => {
    const { userId, body } = request
    return sendCreated(reply as FastifyReply, '/api/v1/projects', request.headers['idempotency-key'],
      () => projects.create(userId, body), (key) => projects.createIdempotent(userId, key, body))
  })

  app.get('/projects/:id', {
    schema: {
      tags,
      operationId: 'getProject',
      summary: 'Get a project',
      params: ProjectParams,
      headers: Type.Object({ 'if-none-match': Type.Optional(Type.String()) }),
      response: { 200: ProjectJson, 304: Type.Null({ description: 'Not modified' }), ...errorResponses(400, 401, 404) },
    },
  }, async (request, reply) => {
    const project = await projects.find(request.userId, request.params.id)
    if (!project) throw notFound('project')
    const etag = etagOf(project.id, project.version)
    reply.header('etag', etag)
    if (noneMatchHits(request.headers['if-none-match'], etag)) return sendEmpty(reply, 304)
    return project
  })

  app.patch('/projects/:id', {
    schema: {
      tags,
      operationId: 'updateProject',
      summary: 'Rename, recolor, archive or unarchive a project',
      params: ProjectParams,
      headers: IfMatchHeaders,
      body: UpdateProjectBody,
      response: { 200: ProjectJson, ...errorResponses(400, 401, 404, 412) },
    },
  }, async (request, reply) => {
    const { id } = request.params
    const project = await projects.update(request.userId, id, request.body, ifMatchVersions(request.headers['if-match'], id))
    return reply.header('etag', etagOf(project.id, project.version)).send(project)
  })

  app.delete('/projects/:id', {
    schema: {
      tags,
      operationId: 'deleteProject',
      summary: 'Delete a project and every task in it',
      params: ProjectParams,
      headers: IfMatchHeaders,
      response: { 204: Type.Null({ description: 'Deleted, with its tasks' }), ...errorResponses(400, 401, 404, 412) },
    },
  }, async (request, reply) => {
    const { id } = request.params
    await projects.delete(request.userId, id, ifMatchVersions(request.headers['if-match'], id))
    return sendEmpty(reply, 204)
  })

  app.post('/projects/:id/move', {
    schema: {
      tags,
      operationId: 'moveProject',
      summary: 'Put a project in another place of your order',
      params: ProjectParams,
      headers: IfMatchHeaders,
      body: MoveProjectBody,
      response: {
        200: ProjectJson,
        ...errorResponses([400, 'beforeId and afterId are not neighbours'], 401, [404, 'The project, or a project named by beforeId or afterId, is not yours'], 412),
      },
    },
  }, async (request, reply) => {
    const { id } = request.params
    const project = await projects.move(request.userId, id, request.body, ifMatchVersions(request.headers['if-match'], id))
    return reply.header('etag', etagOf(project.id, project.version)).send(project)
  })
}
