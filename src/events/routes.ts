import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearerToken, type Authenticate } from '../http/auth-guard.js'
import { badRequest, unauthorized } from '../http/problem.js'
import { errorResponses } from '../http/schemas.js'
import type { SyncCursors } from '../sync/cursor.js'
import type { SyncQueries } from '../sync/queries.js'
import type { EventHub } from './hub.js'
import { ChangeStream } from './stream.js'

export interface EventRoutesOptions {
  authenticate: Authenticate
  sync: SyncQueries
  cursors: SyncCursors
  hub: EventHub
  heartbeatMs?: number
}

const EventsQuery = Type.Object({
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Resume after this cursor (or send Last-Event-ID)' })),
  ticket: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'From POST /events/tickets, for EventSource, which cannot send headers' })),
}, { additionalProperties: false })

/** `GET /events`: public in routing, because a browser authenticates with `?ticket=`, not a header. */
export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, options) => {
  const { authenticate, sync, cursors, hub, heartbeatMs = 15_000 } = options

  app.get('/events', {
    schema: {
      tags: ['sync'],
      summary: 'Live changes to your tasks (text/event-stream)',
      description: 'Events task.upsert (data: the task) and task.delete (data: {id, deletedAt}); each id is a ' +
        'cursor /sync accepts. Without Last-Event-ID or since, the stream starts now. A comment every 15 s.',
      security: [{ bearerAuth: [] }, {}],
      querystring: EventsQuery,
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 1000 })) }),
      response: { 200: Type.String({ description: 'text/event-stream' }), ...errorResponses(400, 401, 410) },
    },
  }, async (request, reply) => {
    const token = bearerToken(request.headers.authorization)
    const { ticket } = request.query
    const userId = token
      ? (await authenticate(token))?.userId
      : ticket ? await sync.useTicket(ticket) : undefined
    if (!userId) throw unauthorized('A valid access token (Authorization: Bearer) or ticket is required')
    const log = await sync.position(userId)
    if (!log) throw unauthorized()

    const lastEventId = request.headers['last-event-id']
    const resumeFrom = lastEventId ?? request.query.since
    let fromSeq = log.changeSeq
    if (resumeFrom !== undefined) {
      const parameter = lastEventId !== undefined ? 'Last-Event-ID' : 'since'
      const { position } = cursors.read(userId, resumeFrom, log.syncFloorSeq, parameter)
      if (position.mode !== 'delta') throw badRequest('A first sync in progress cannot be streamed; finish it with /sync', [{ path: `query.${parameter}`, message: 'is a cursor of an unfinished full sync' }])
      fromSeq = position.seq
    }

    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
      'x-request-id': request.id,
    })
    const stream = new ChangeStream({ userId, fromSeq, res, sync, cursors, log: request.log, heartbeatMs })
    let unsubscribe = () => {}
    request.raw.on('close', () => {
      stream.dispose()
      unsubscribe()
    })
    try {
      unsubscribe = await hub.add(stream)
    } catch (error) {
      request.log.warn({ message: (error as Error).message }, 'could not listen for changes')
      stream.end()
      return
    }
    if (res.closed) unsubscribe()
    // Catch up: what committed between reading the position and listening, and after `since`.
    stream.wake()
  })
}

export const ticketRoutes: FastifyPluginAsyncTypebox<{ sync: SyncQueries }> = async (app, { sync }) => {
  app.post('/events/tickets', {
    schema: {
      tags: ['sync'],
      summary: 'A single-use ticket to open the event stream from a browser',
      description: 'Valid 60 seconds, once: new EventSource(`/api/v1/events?ticket=${ticket}`).',
      response: { 201: Type.Object({ ticket: Type.String(), expiresIn: Type.Integer() }), ...errorResponses(401) },
    },
  }, async (request, reply) => {
    return reply.code(201).send({ ticket: await sync.createTicket(request.userId), expiresIn: 60 })
  })
}
