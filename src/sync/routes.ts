import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { fittingCount, MAX_PAGE_BYTES } from '../http/page-size.js'
import { unauthorized } from '../http/problem.js'
import { errorResponses } from '../http/schemas.js'
import type { SyncCursors, SyncPosition } from './cursor.js'
import type { ChangePage, SyncQueries } from './queries.js'
import { SyncPageJson, SyncQuery, toChangeJson } from './schemas.js'

export interface SyncRoutesOptions {
  sync: SyncQueries
  cursors: SyncCursors
}

/** What one read of the log gave, and from where. */
interface Segment { at: SyncPosition, read: ChangePage }

export const syncRoutes: FastifyPluginAsyncTypebox<SyncRoutesOptions> = async (app, { sync, cursors }) => {
  app.get('/sync', {
    schema: {
      tags: ['sync'],
      operationId: 'syncChanges',
      summary: 'Changes to your projects and tasks since a cursor, deletes included',
      description: 'Without since: every current project, then every current task, as upserts (paged). With since: what changed ' +
        'after it. Loop while hasMore is true. A 410 means the cursor is too old: start over without since.',
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
    const start: SyncPosition = since === undefined ? { phase: 'projects', seq: 0 } : cursors.read(userId, since, log.syncFloorSeq).position

    // A first sync reads the projects, then (in the same page when they leave room) the tasks.
    const segments: Segment[] = []
    for (let at: SyncPosition | undefined = start, room = limit; at && room > 0;) {
      const read = await sync.changesAfter(userId, at.seq, { limit: room, maxBytes: MAX_PAGE_BYTES, only: 'phase' in at ? at.phase : undefined })
      segments.push({ at, read })
      room -= read.changes.length
      at = !read.hasMore && 'phase' in at && at.phase === 'projects' ? { phase: 'tasks', seq: 0, resumeAt: log.changeSeq } : undefined
    }
    const changes = segments.flatMap(({ read }) => read.changes.map(toChangeJson))
    // A page of large tasks ends early, by bytes: the client goes on with hasMore.
    const fitting = fittingCount(changes)
    const { position, hasMore } = next(segments, fitting, log.changeSeq)
    return { changes: changes.slice(0, fitting), cursor: cursors.mint(userId, position), hasMore }
  })
}

/** Where the client goes on from once it has the first `kept` changes of these reads. */
function next (segments: Segment[], kept: number, head: number): { position: SyncPosition, hasMore: boolean } {
  let after: { position: SyncPosition, hasMore: boolean } = { position: segments[0]!.at, hasMore: true }
  for (const { at, read } of segments) {
    const taken = Math.min(kept, read.changes.length)
    kept -= taken
    const last = read.changes[taken - 1]?.seq ?? at.seq
    if (taken < read.changes.length || read.hasMore) return { position: { ...at, seq: last }, hasMore: true }
    if (!('phase' in at)) return { position: { seq: Math.max(last, head) }, hasMore: false }
    // Projects done: the tasks next. Tasks done: a delta from where the log stood before the first
    // page of tasks, so what changed while they were read is sent again, not lost.
    after = at.phase === 'projects'
      ? { position: { phase: 'tasks', seq: 0, resumeAt: head }, hasMore: true }
      : { position: { seq: at.resumeAt }, hasMore: false }
  }
  return after
}
