import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/client.js'
import { statement } from '../db/sql.js'
import type { NoticeFeed } from '../events/feed.js'
import { CHANGES_CHANNEL, webhooksNotice } from '../events/notices.js'

const HOOKED = statement('select distinct w.user_id as "userId" from webhooks w where w.enabled')

/**
 * Which users have (or recently had) an enabled endpoint, in this process: after a write of theirs
 * commits, the writing process wakes its scheduler for the event the write queued. The set is a hint
 * kept in memory, read whole at start, when the LISTEN connection comes back and hourly, and grown by
 * a `<userId>:webhooks` notice from whichever process creates or enables an endpoint; an entry that
 * went stale (the endpoint deleted) costs one look at the jobs table per write, nothing more. A write
 * the hint missed is still delivered: every process looks at the table at least once a minute.
 */
export function webhookUsers (database: Database, feed: NoticeFeed, logger: FastifyBaseLogger) {
  let users = new Set<string>()
  const load = async () => {
    try {
      users = new Set((await database.query<{ userId: string }>(HOOKED)).map((row) => row.userId))
    } catch (error) {
      logger.warn({ message: (error as Error).message }, 'could not read which users have webhook endpoints')
    }
  }
  const unsubscribe = feed.subscribe({
    notice (notice) { if (notice.kind === 'webhooks') users.add(notice.userId) },
    lost () {},
    restored () { void load() },
  })
  return {
    load,
    has: (userId: string): boolean => users.has(userId),
    /** After an endpoint of `userId` was created or enabled (committed): this process and the others know. */
    added (userId: string): void {
      users.add(userId)
      database.notify(CHANGES_CHANNEL, [webhooksNotice(userId)]).catch((error: Error) => {
        logger.warn({ message: error.message }, 'could not tell the other processes of a new webhook endpoint')
      })
    },
    close: unsubscribe,
  }
}

export type WebhookUsers = ReturnType<typeof webhookUsers>
