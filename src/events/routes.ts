import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Problem, ProblemType, unauthorized } from '../http/problem.js'
import { errorResponses } from '../http/schemas.js'
import type { SyncCursors } from '../sync/cursor.js'
import type { SyncQueries } from '../sync/queries.js'
import type { EventHub } from './hub.js'
import { ChangeStream } from './stream.js'

export interface EventRoutesOptions {
  sync: SyncQueries
  cursors: SyncCursors
  hub: EventHub
  heartbeatMs?: number
}

const EventsQuery = Type.Object({
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Resume after this cursor (or send Last-Event-ID)' })),
  ticket: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'From POST /events/tickets, for EventSource, which cannot send headers' })),
}, { additionalProperties: false })

const tooManyStreams = (max: number) => new Problem(429,
  `This account already has ${max} event streams open here; close one (or reuse it) before opening another`,
  undefined, ProblemType.rateLimited, { 'retry-after': '5' })

/** `GET /events` and its tickets; registered in the signed-in scope, which accepts the ticket for it. */
export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, options) => {
  const { sync, cursors, hub, heartbeatMs = 15_000 } = options

  app.get('/events', {
    config: { ticketAuth: true },
    schema: {
      tags: ['sync'],
      summary: 'Live changes to your tasks (text/event-stream)',
      description: 'Events task.upsert (data: the task) and task.delete (data: {id, deletedAt}); each id is a ' +
        'cursor /sync accepts. Without Last-Event-ID or since, the stream starts now. A comment every 15 s. ' +
        'The stream ends when its access token expires or its session ends, after an event reauth: reconnect ' +
        'with a fresh token (or ticket) and Last-Event-ID; nothing is missed.',
      querystring: EventsQuery,
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 1000 })) }),
      response: { 200: Type.String({ description: 'text/event-stream' }), ...errorResponses(400, 401, 410, 429) },
    },
  }, async (request, reply) => {
    const principal = request.principal!
    const { userId } = principal
    const log = await sync.position(userId)
    if (!log) throw unauthorized()

    const lastEventId = request.headers['last-event-id']
    const resumeFrom = lastEventId ?? request.query.since
    let fromSeq = log.changeSeq
    if (resumeFrom !== undefined) {
      const parameter = lastEventId !== undefined ? 'Last-Event-ID' : 'since'
      fromSeq = cursors.read(userId, resumeFrom, log.syncFloorSeq, parameter).position.seq
    }
    // Checked and taken in one tick: two racing opens cannot both take the last place.
    if (!hub.hasRoomFor(userId)) throw tooManyStreams(hub.maxStreamsPerUser)

    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      ...reply.getHeaders() as Record<string, string>,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
      'x-request-id': request.id,
    })
    // Catching up (what committed since `fromSeq`) starts as the stream is added.
    hub.add(userId, (callbacks) => new ChangeStream({
      userId, sessionId: principal.sessionId, fromSeq, expiresAt: principal.expiresAt, res, cursors, heartbeatMs, ...callbacks,
    }))
  })
}

export const ticketRoutes: FastifyPluginAsyncTypebox<{ sync: SyncQueries }> = async (app, { sync }) => {
  app.post('/events/tickets', {
    schema: {
      tags: ['sync'],
      summary: 'A single-use ticket to open the event stream from a browser',
      description: 'Valid 60 seconds, once: new EventSource(`/api/v1/events?ticket=${ticket}`). The stream lives no ' +
        'longer than the access token that bought the ticket.',
      response: { 201: Type.Object({ ticket: Type.String(), expiresIn: Type.Integer() }), ...errorResponses(401) },
    },
  }, async (request, reply) => {
    return reply.code(201).send({ ticket: await sync.createTicket(request.principal!), expiresIn: 60 })
  })
}
