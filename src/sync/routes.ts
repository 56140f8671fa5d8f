import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { fittingCount, MAX_PAGE_BYTES } from '../http/page-size.js'
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
      operationId: 'syncChanges', summary: 'Changes to your tasks since a cursor, deletes included',
      description: 'Without since: every current task as an upsert (paged). With since: what changed after it. ' +
        'Loop while hasMore is true. A 410 means the cursor is too old: start over without since.',
      querystring: SyncQuery,
      response: { 200: SyncPageJson, ...errorResponses([400, 'since is not a cursor of yours, or limit is invalid'], 401, [410, 'The cursor is older than the change log keeps (type sync-expired): sync again without since']) },
    },
  }, async (request) => {
    const { userId } = request
    const limit = request.query.limit ?? 500
    // Read before the changes: every seq up to it has committed, so the page below sees them all.
    const log = await sync.position(userId)
    if (!log) throw unauthorized()
    const { since } = request.query
    const from = since === undefined ? 0 : cursors.read(userId, since, log.syncFloorSeq).position.seq
    // A first sync has nothing to delete: it gets the live tasks only.
    const read = await sync.changesAfter(userId, from, { limit, maxBytes: MAX_PAGE_BYTES, tombstones: since !== undefined })
    const changes = read.changes.map(toChangeJson)
    // A page of large tasks ends early, by bytes: the client goes on with hasMore.
    const fitting = fittingCount(changes)
    const hasMore = read.hasMore || fitting < changes.length
    const page = read.changes.slice(0, fitting)
    const through = hasMore ? page.at(-1)!.seq : Math.max(page.at(-1)?.seq ?? from, log.changeSeq)
    return { changes: changes.slice(0, fitting), cursor: cursors.mint(userId, { seq: through }), hasMore }
  })
}
