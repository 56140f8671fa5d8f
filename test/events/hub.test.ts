import { PassThrough } from 'node:stream'
import type { ServerResponse } from 'node:http'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import type { Database } from '../../src/db/client.js'
import type { NoticeFeed, NoticeListener } from '../../src/events/feed.js'
import { eventHub, type LogReader } from '../../src/events/hub.js'
import { ChangeStream } from '../../src/events/stream.js'
import { syncCursors } from '../../src/sync/cursor.js'
import type { ChangeOut } from '../../src/sync/queries.js'
import type { Task } from '../../src/tasks/schemas.js'

const USER = '00000000-0000-4000-8000-000000000001'
const cursors = syncCursors(new TextEncoder().encode('a test secret of at least 32 bytes'), 86_400_000)

/** A change-log reader whose every read waits until the test answers it. */
function controlledLog () {
  const reads: Array<{ after: number, answer: (changes: ChangeOut[]) => void }> = []
  const log: LogReader = {
    changesAfter: (_userId, after) => new Promise((resolve) => {
      reads.push({ after, answer: (changes) => resolve({ changes, hasMore: false }) })
    }),
  }
  return { log, reads }
}

function quietFeed () {
  const listeners = new Set<NoticeListener>()
  const feed = { live: true, subscribe: (l: NoticeListener) => { listeners.add(l); return () => listeners.delete(l) } }
  return {
    feed: feed as unknown as NoticeFeed,
    changed: () => { for (const l of listeners) l.notice({ userId: USER, kind: 'change' }) },
  }
}

const upsert = (seq: number): ChangeOut => ({
  seq, type: 'task', op: 'upsert', task: { id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`, title: `t${seq}` } as Task,
})

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('the event hub', () => {
  it('reads again when a change is announced while a read comes back empty (no lost wake-up)', async () => {
    const { log, reads } = controlledLog()
    const { feed, changed } = quietFeed()
    const hub = eventHub({ database: {} as Database, feed, log, logger: pino({ level: 'silent' }), maxStreamsPerUser: 10, pollMs: 60_000 })
    const res = new PassThrough()
    let body = ''
    res.on('data', (chunk) => { body += chunk })
    hub.add(USER, (callbacks) => new ChangeStream({
      userId: USER, sessionId: undefined, fromSeq: 0, expiresAt: Date.now() + 60_000,
      res: res as unknown as ServerResponse, cursors, heartbeatMs: 60_000, ...callbacks,
    }))
    // The catch-up read is under way; a write commits and is announced before it returns...
    expect(reads).toHaveLength(1)
    changed()
    // ...and the read, begun before that write, finds nothing.
    reads[0]!.answer([])
    await tick()
    // The wake-up is not lost: a second read follows, and delivers the change.
    expect(reads).toHaveLength(2)
    expect(reads[1]!.after).toBe(0)
    reads[1]!.answer([upsert(1)])
    await tick()
    expect(body).toContain('event: task.upsert')
    expect(body).toContain('"title":"t1"')
    hub.close()
  })

  it('reads the log once per change for all of a user\'s streams, and gives each what it has not seen', async () => {
    const { log, reads } = controlledLog()
    const { feed, changed } = quietFeed()
    const hub = eventHub({ database: {} as Database, feed, log, logger: pino({ level: 'silent' }), maxStreamsPerUser: 10, pollMs: 60_000 })
    const bodies: string[] = []
    for (const fromSeq of [0, 0, 0, 1]) {
      const res = new PassThrough()
      const i = bodies.push('') - 1
      res.on('data', (chunk) => { bodies[i] += chunk })
      hub.add(USER, (callbacks) => new ChangeStream({
        userId: USER, sessionId: undefined, fromSeq, expiresAt: Date.now() + 60_000,
        res: res as unknown as ServerResponse, cursors, heartbeatMs: 60_000, ...callbacks,
      }))
    }
    // Four streams opened: one read at a time, never one per stream.
    while (reads.length > 0 && reads.length < 10) {
      const read = reads.shift()!
      read.answer(read.after < 2 ? [upsert(1), upsert(2)].filter((c) => c.seq > read.after) : [])
      await tick()
      if (reads.length === 0) break
    }
    changed()
    await tick()
    expect(reads).toHaveLength(1) // one read for the four streams
    reads.shift()!.answer([upsert(3)])
    await tick()
    for (const [i, body] of bodies.entries()) {
      expect(body.match(/"title":"t1"/g)?.length ?? 0, `stream ${i}`).toBe(i === 3 ? 0 : 1) // the fourth had seq 1 already
      expect(body.match(/"title":"t2"/g)).toHaveLength(1)
      expect(body.match(/"title":"t3"/g)).toHaveLength(1)
    }
    hub.close()
  })
})
