import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { tooManyStreams, unauthorized } from '../http/problem.js'
import { errorResponses } from '../http/schemas.js'
import type { SyncCursors } from '../sync/cursor.js'
import type { SyncQueries } from '../sync/queries.js'
import type { EventHub } from './hub.js'
import { ChangeStream } from './stream.js'
import { TICKET_SECONDS, type TicketQueries } from './tickets.js'

export interface EventRoutesOptions {
  sync: SyncQueries
  cursors: SyncCursors
  hub: EventHub
  /** EVENT_HEARTBEAT_SECONDS, in milliseconds. */
  heartbeatMs: number
}

const EventTicketJson = Type.Object({
  ticket: Type.String({ description: 'Pass as ?ticket= to GET /api/v1/events, once, within expiresIn seconds' }),
  expiresIn: Type.Integer(),
}, { title: 'EventTicket', examples: [{ ticket: 'Zr0sPq2n8Vb4Kd6Hf1Jl3Mx5Cw7Ta9Ye2Ug4Io6Ah8', expiresIn: 60 }] })

const EventsQuery = Type.Object({
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Resume after this cursor (or send Last-Event-ID)' })),
  ticket: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'From POST /events/tickets, for EventSource, which cannot send headers' })),
}, { additionalProperties: false })

/** `GET /events` and its tickets; registered in the signed-in scope, which accepts the ticket for it. */
export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, options) => {
  const { sync, cursors, hub, heartbeatMs } = options

  app.get('/events', {
    config: { ticketAuth: true },
    schema: {
      tags: ['sync'],
      operationId: 'streamEvents', summary: 'Live changes to your projects and tasks (text/event-stream)',
      description: 'Events task.upsert (data: the task), project.upsert (data: the project), task.delete and project.delete ' +
        '(data: {id, deletedAt}), reminder.fired (data: a ReminderFired) and reminder.missed (data: a ReminderMissed); skip an event you do not know. Each id is a ' +
        'cursor /sync accepts. Without Last-Event-ID or since, the stream starts now. A comment every EVENT_HEARTBEAT_SECONDS (15 s by default). ' +
        'The stream ends when its access token expires or its session ends, after an event reauth: reconnect ' +
        'with a fresh token (or ticket) and Last-Event-ID; nothing is missed.',
      querystring: EventsQuery,
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 1000 })) }),
      response: {
        200: {
          description: 'A text/event-stream. Events: `task.upsert` (data: the Task), `project.upsert` (data: the Project), ' +
            '`task.delete` and `project.delete` (data: {id, deletedAt}), `reminder.fired` (data: the ReminderFired), `reminder.missed` (data: the ReminderMissed), ' +
            '`webhook.disabled` (data: {id, url, reason, disabledAt}: the server disabled one of your webhook endpoints; no id, not a change of the log), ' +
            '`reauth` (data: {reason: expired|logout|revoked}; the stream then ends: reconnect with a fresh token and Last-Event-ID). ' +
            'Each event id is a cursor /sync accepts; a comment line every EVENT_HEARTBEAT_SECONDS (15 s by default) keeps the connection alive.',
          content: {
            'text/event-stream': {
              schema: Type.String({
                examples: ['id: eyJkIiwxNF0.k3J9\nevent: task.upsert\ndata: {"id":"0b9a7c64-5b0f-4f7e-9a3e-4f1f2a8e6d11","title":"Write the report",...}\n\n'],
              }),
            },
          },
        },
        ...errorResponses([400, 'since or Last-Event-ID is not a cursor of yours'], 401, [410, 'The cursor is older than the change log keeps (type sync-expired)'],
          [429, 'Too many streams open for this account, or the API rate limit reached (type rate-limited)']),
      },
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

export const ticketRoutes: FastifyPluginAsyncTypebox<{ tickets: TicketQueries }> = async (app, { tickets }) => {
  app.post('/events/tickets', {
    schema: {
      tags: ['sync'],
      operationId: 'createEventTicket', summary: 'A single-use ticket to open the event stream from a browser',
      description: 'Valid 60 seconds, once: new EventSource(`/api/v1/events?ticket=${ticket}`). The stream lives no ' +
        'longer than the access token that bought the ticket.',
      response: { 201: EventTicketJson, ...errorResponses(401) },
    },
  }, async (request, reply) => {
    return reply.code(201).send({ ticket: await tickets.create(request.principal!), expiresIn: TICKET_SECONDS })
  })
}
