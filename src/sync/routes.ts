import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { unauthorized } from '../http/problem.js'
import { errorResponses } from '../http/schemas.js'
import type { SyncCursors } from './cursor.js'
import type { SyncQueries } from './queries.js'
import { SyncPageJson, SyncQuery, toChangeJson } from './schemas.js'

export interface SyncRoutesOptions {
  sync: SyncQueries
  cursors: SyncCursors
}

export const syncRoutes: FastifyPluginAsyncTypebox<SyncRoutesOptions> = async (app, { sync, cursors }) => {
  app.get('/sync', {
    schema: {
      tags: ['sync'],
      summary: 'Changes to your tasks since a cursor, deletes included',
      description: 'Without since: every current task as an upsert (paged). With since: what changed after it. ' +
        'Loop while hasMore is true. A 410 means the cursor is too old: start over without since.',
      querystring: SyncQuery,
      response: { 200: SyncPageJson, ...errorResponses(400, 401, 410) },
    },
  }, async (request) => {
    const { userId } = request
    const limit = request.query.limit ?? 500
    const log = await sync.position(userId)
    if (!log) throw unauthorized()
    const position = request.query.since === undefined
      ? { mode: 'full' as const, seq: log.changeSeq, afterId: undefined }
      : cursors.read(userId, request.query.since, log.syncFloorSeq).position

    if (position.mode === 'full') {
      // The snapshot's seq was read before its tasks: a write committing meanwhile has a higher
      // seq and is replayed by the delta that follows (an upsert twice is harmless).
      const rows = await sync.tasksAfter(userId, position.afterId, limit + 1)
      const page = rows.slice(0, limit)
      const hasMore = rows.length > limit
      return {
        changes: page.map((task) => toChangeJson({ seq: 0, op: 'upsert', task })),
        cursor: hasMore
          ? cursors.mint(userId, { mode: 'full', seq: position.seq, afterId: page.at(-1)!.id })
          : cursors.mint(userId, { mode: 'delta', seq: position.seq }),
        hasMore,
      }
    }

    const rows = await sync.changesAfter(userId, position.seq, limit + 1)
    const page = rows.slice(0, limit)
    const changes = await sync.resolve(userId, page)
    return {
      changes: changes.map(toChangeJson),
      cursor: cursors.mint(userId, { mode: 'delta', seq: page.at(-1)?.seq ?? position.seq }),
      hasMore: rows.length > limit,
    }
  })
}
