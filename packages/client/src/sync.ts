import type { Client } from 'openapi-fetch'
import { dataOf } from './errors.js'
import type { paths } from './openapi.js'
import type { Change, SyncPage } from './types.js'

export interface SyncOptions {
  /** Changes per page, 1-1000 (the server's default is 500). */
  limit?: number
}

export interface SyncMethods {
  /**
   * Every change after `cursor` (everything, as upserts, without one), page after page until the
   * server has no more, and the cursor to pass next time. Apply the changes in order: a task changed
   * between two pages appears in both, the later state last. A cursor older than the server keeps
   * its log (30 days) rejects with a 410 TaskbaseError of type `ProblemType.syncExpired`: clear the
   * local copy and pull without one.
   */
  pull (cursor?: string, options?: SyncOptions): Promise<{ changes: Change[], cursor: string }>
  /** The same pages one at a time, for a local copy too large to take in one array. */
  pages (cursor?: string, options?: SyncOptions): AsyncIterable<SyncPage>
}

export function syncMethods (api: Client<paths>): SyncMethods {
  async function * pages (cursor?: string, { limit }: SyncOptions = {}) {
    let since = cursor
    for (;;) {
      const page = await dataOf(api.GET('/api/v1/sync', { params: { query: { since, limit } } }))
      yield page
      if (!page.hasMore) return
      since = page.cursor
    }
  }

  return {
    pages,
    async pull (cursor, options) {
      const changes: Change[] = []
      let last = cursor
      for await (const page of pages(cursor, options)) {
        changes.push(...page.changes)
        last = page.cursor
      }
      // Every page has a cursor and there is at least one page: `last` is set.
      return { changes, cursor: last! }
    },
  }
}
