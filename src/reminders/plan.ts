import { randomUUID } from 'node:crypto'
import type { StoredReminder } from '../db/schema.js'
import { toStoredTime } from '../db/timestamps.js'
import { badRequest } from '../http/problem.js'
import type { ReminderBody } from './schemas.js'

const refusal = (detail: string, path: string, message: string) => badRequest(detail, [{ path, message }])

/**
 * The reminders a task stores after a write that sets them: ids kept for the ones sent back, new ids
 * for the rest. A reminder sent back unchanged keeps its `missedAt`. Throws a 400 naming the field:
 * neither or both of offsetMinutes and at, an id the task does not have (or given twice), a relative
 * reminder on a task that will have no dueAt.
 */
export function remindersOf (given: ReminderBody[], existing: readonly StoredReminder[], dueAt: string | null): StoredReminder[] {
  const byId = new Map(existing.map((reminder) => [reminder.id, reminder]))
  const seen = new Set<string>()
  return given.map((reminder, i) => {
    const path = `body.reminders.${i}`
    if ((reminder.offsetMinutes === undefined) === (reminder.at === undefined)) {
      throw refusal('A reminder is relative (offsetMinutes) or absolute (at): give exactly one of them', path, 'needs exactly one of offsetMinutes and at')
    }
    if (reminder.offsetMinutes !== undefined && dueAt === null) {
      throw refusal('A relative reminder needs a dueAt to count from: set dueAt, or use at', 'body.reminders',
        `${i}: offsetMinutes needs a task with a dueAt`)
    }
    let kept: StoredReminder | undefined
    if (reminder.id !== undefined) {
      const id = reminder.id.toLowerCase()
      kept = byId.get(id)
      if (kept === undefined || seen.has(id)) {
        throw refusal('Send back the ids of the task\'s reminders to keep; leave id out for a new one', `${path}.id`,
          kept === undefined ? 'is not a reminder of this task' : 'is given twice')
      }
      seen.add(id)
    }
    const id = kept?.id ?? randomUUID()
    if (reminder.offsetMinutes !== undefined) {
      const same = kept?.offsetMinutes === reminder.offsetMinutes
      return { id, offsetMinutes: reminder.offsetMinutes, missedAt: same ? kept!.missedAt : null }
    }
    const at = toStoredTime(reminder.at!)
    return { id, at, missedAt: kept?.at === at ? kept.missedAt : null }
  })
}

/** The first time one of these reminders is due after `now` (ms since the epoch), if any. */
export function nextFiring (reminders: readonly StoredReminder[], dueAt: string | null, now = Date.now()): number | undefined {
  let next: number | undefined
  for (const reminder of reminders) {
    const at = reminder.at !== undefined
      ? Date.parse(reminder.at)
      : dueAt === null ? NaN : Date.parse(dueAt) + reminder.offsetMinutes! * 60_000
    if (at > now && (next === undefined || at < next)) next = at
  }
  return next
}
