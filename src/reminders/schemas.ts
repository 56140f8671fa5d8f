import { Type, type Static } from 'typebox'
import { DateTime, Nullable, Uuid } from '../http/schemas.js'

/** At most this many reminders on one task. */
export const MAX_REMINDERS = 10
/** An offset reaches at most a year either side of the due date. */
export const MAX_OFFSET_MINUTES = 366 * 24 * 60

const OFFSET = 'Minutes from the task\'s dueAt (negative: before it, e.g. -30); it applies to every occurrence of a recurring task, ' +
  'and waits, inactive, while the task has no dueAt'
const AT = 'An absolute time; it fires once'

/** A reminder as the API shows it: exactly one of `offsetMinutes` and `at`. */
export const ReminderJson = Type.Object({
  id: Uuid,
  offsetMinutes: Type.Optional(Type.Integer({ description: OFFSET })),
  at: Type.Optional(DateTime({ description: AT })),
  missedAt: Nullable(DateTime({
    description: 'When the server last found this reminder\'s firing missed: it was down past the time by more than REMINDER_GRACE_MINUTES; ' +
      'null otherwise. Cleared when the reminder is edited',
  })),
}, {
  title: 'Reminder',
  description: 'Relative (offsetMinutes) or absolute (at); the server gives it its id',
  examples: [{ id: '5d0c1f7e-2a4b-4c6d-8e9f-0a1b2c3d4e5f', offsetMinutes: -30, missedAt: null }],
})
export type ReminderJson = Static<typeof ReminderJson>

/** A reminder as a client sends it: the id of one to keep, and its time. */
export const ReminderBody = Type.Object({
  id: Type.Optional(Type.String({ format: 'uuid', description: 'Keeps the task\'s reminder of this id (its missedAt too, when its time is unchanged); omit it for a new one' })),
  offsetMinutes: Type.Optional(Type.Integer({ minimum: -MAX_OFFSET_MINUTES, maximum: MAX_OFFSET_MINUTES, description: OFFSET })),
  at: Type.Optional(DateTime({ description: AT })),
}, {
  additionalProperties: false,
  title: 'NewReminder',
  description: 'Exactly one of offsetMinutes and at',
  examples: [{ offsetMinutes: -30 }],
})
export type ReminderBody = Static<typeof ReminderBody>

export const RemindersBody = Type.Array(ReminderBody, {
  maxItems: MAX_REMINDERS,
  description: `At most ${MAX_REMINDERS}. Replaces the task's reminders: send back the ids of the ones to keep. A reminder whose time has passed never fires`,
})

/** What a firing and a missed firing both say: whose reminder, of which occurrence, due when. */
const FIRING = {
  taskId: Uuid,
  reminderId: Uuid,
  occurrence: Nullable(DateTime({ description: 'The dueAt the reminder belongs to; null for an absolute reminder on a task without one' })),
  fireAt: DateTime({ description: 'When it was due to fire' }),
}
const TITLE_THEN = Type.String({ description: 'The task\'s title then' })

/** A reminder's firing as the change log and the event stream give it. */
export const ReminderFiredJson = Type.Object({
  ...FIRING,
  firedAt: DateTime({ description: 'When it fired' }),
  title: TITLE_THEN,
}, {
  title: 'ReminderFired',
  examples: [{ taskId: '0b9a7c64-5b0f-4f7e-9a3e-4f1f2a8e6d11', reminderId: '5d0c1f7e-2a4b-4c6d-8e9f-0a1b2c3d4e5f',
    occurrence: '2026-12-25T08:00:00.000Z', fireAt: '2026-12-25T07:30:00.000Z', firedAt: '2026-12-25T07:30:00.041Z', title: 'Write the report' }],
})
export type ReminderFiredJson = Static<typeof ReminderFiredJson>

/** A firing the server was down for, past REMINDER_GRACE_MINUTES: recorded, not delivered as news. */
export const ReminderMissedJson = Type.Object({
  ...FIRING,
  missedAt: DateTime({ description: 'When the server found it missed' }),
  title: TITLE_THEN,
}, { title: 'ReminderMissed' })
export type ReminderMissedJson = Static<typeof ReminderMissedJson>
