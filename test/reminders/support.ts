import { setTimeout as sleep } from 'node:timers/promises'
import type { Account, TestApp } from '../helpers.js'

export interface ReminderChange {
  type: 'reminder'
  op: 'fired' | 'missed'
  reminder: { taskId: string, reminderId: string, occurrence: string | null, fireAt: string, firedAt?: string, missedAt?: string, title: string }
}

/** The user's current sync cursor: what a device that is up to date holds. */
export async function cursorOf (t: TestApp, account: Account): Promise<string> {
  let res = (await t.inject({ url: '/api/v1/sync', headers: account.headers })).json()
  while (res.hasMore) res = (await t.inject({ url: `/api/v1/sync?since=${res.cursor}`, headers: account.headers })).json()
  return res.cursor
}

/** Every change after `since`, reading page after page. */
export async function changesSince (t: TestApp, account: Account, since: string): Promise<{ changes: any[], cursor: string }> {
  const changes: any[] = []
  let cursor = since
  for (;;) {
    const res = await t.inject({ url: `/api/v1/sync?since=${cursor}&limit=1000`, headers: account.headers })
    if (res.statusCode !== 200) throw new Error(`sync answered ${res.statusCode}: ${res.body}`)
    const page = res.json()
    changes.push(...page.changes)
    cursor = page.cursor
    if (!page.hasMore) return { changes, cursor }
  }
}

/** The reminder changes after `since`, once there are at least `count` of them (bounded wait). */
export async function remindersSince (t: TestApp, account: Account, since: string, count: number, ms = 15_000): Promise<ReminderChange[]> {
  const until = Date.now() + ms
  for (;;) {
    const found = (await changesSince(t, account, since)).changes.filter((c) => c.type === 'reminder')
    if (found.length >= count) return found
    if (Date.now() > until) throw new Error(`expected ${count} reminder change(s) within ${ms} ms, got ${found.length}`)
    await sleep(100)
  }
}

/** An RFC 3339 time `ms` from now, to the millisecond. */
export const fromNow = (ms: number) => new Date(Date.now() + ms).toISOString()
