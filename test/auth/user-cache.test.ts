import { describe, expect, it } from 'vitest'
import { userCache } from '../../src/auth/user-cache.js'
import type { NoticeFeed, NoticeListener } from '../../src/events/feed.js'

/** A feed the test drives: notices, losses and reconnections happen when the test says. */
function fakeFeed () {
  const listeners = new Set<NoticeListener>()
  const feed = {
    live: true,
    subscribe (listener: NoticeListener) { listeners.add(listener); return () => listeners.delete(listener) },
    announce () {},
    async start () {},
    async close () {},
  }
  return {
    feed: feed as unknown as NoticeFeed,
    setLive (live: boolean) { feed.live = live },
    deleted (userId: string) { for (const l of listeners) l.notice({ userId, kind: 'deleted' }) },
    lost () { feed.live = false; for (const l of listeners) l.lost() },
    restored () { feed.live = true; for (const l of listeners) l.restored() },
  }
}

const USER = '00000000-0000-4000-8000-000000000001'

describe('the cache of known users', () => {
  it('asks the database once, then remembers a user who exists', async () => {
    const { feed } = fakeFeed()
    const cache = userCache(feed)
    let asked = 0
    const check = async () => { asked++; return true }
    expect(await cache.exists(USER, check)).toBe(true)
    expect(await cache.exists(USER, check)).toBe(true)
    expect(asked).toBe(1)
    expect(cache.isKnown(USER)).toBe(true)
  })

  it('never remembers a user who does not exist', async () => {
    const { feed } = fakeFeed()
    const cache = userCache(feed)
    expect(await cache.exists(USER, async () => false)).toBe(false)
    expect(cache.isKnown(USER)).toBe(false)
  })

  it('forgets a user as soon as a deletion is heard', async () => {
    const driver = fakeFeed()
    const cache = userCache(driver.feed)
    await cache.exists(USER, async () => true)
    driver.deleted(USER)
    expect(cache.isKnown(USER)).toBe(false)
  })

  it('forgets everyone when the feed is lost, and remembers nothing until it is back', async () => {
    const driver = fakeFeed()
    const cache = userCache(driver.feed)
    await cache.exists(USER, async () => true)
    driver.lost()
    expect(cache.isKnown(USER)).toBe(false)
    await cache.exists(USER, async () => true) // a deletion now would go unheard
    expect(cache.isKnown(USER)).toBe(false)
    driver.restored()
    await cache.exists(USER, async () => true)
    expect(cache.isKnown(USER)).toBe(true)
  })

  it('does not keep an answer that raced a deletion', async () => {
    const driver = fakeFeed()
    const cache = userCache(driver.feed)
    // The query saw the user, but the deletion was heard while it ran: its answer is stale.
    const answer = await cache.exists(USER, async () => { driver.deleted(USER); return true })
    expect(answer).toBe(true)
    expect(cache.isKnown(USER)).toBe(false)
  })
})
