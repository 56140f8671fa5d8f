import { Type, type Static } from 'typebox'
import { DateTime, Nullable, StringEnum, TimeZone } from '../http/schemas.js'

const From = StringEnum(['due', 'completion'], {
  description: 'due: the next occurrence follows the schedule (the first after the completed one and after now); ' +
    'completion: counted from the day it was completed (every 3 days after the last time it was done)',
})

const RULE = 'An RFC 5545 RRULE body: FREQ=DAILY, WEEKLY, MONTHLY or YEARLY, with INTERVAL, BYDAY (MO,WE; -1FR), BYMONTHDAY ' +
  '(-1 is the last day), BYMONTH, BYSETPOS, WKST, and COUNT or UNTIL (a UTC date-time 20261231T235959Z, or a date 20261231). ' +
  'The time of day comes from dueAt'

export const RECURRENCE_EXAMPLE = { rule: 'FREQ=MONTHLY;BYDAY=-1FR', timezone: 'Europe/Berlin', from: 'due' }

/** A task's series, as the API shows it. */
export const RecurrenceJson = Type.Object({
  rule: Type.String({ description: `${RULE}. Stored in upper case` }),
  timezone: Type.String({ description: 'The IANA zone the occurrences are computed in: 09:00 stays 09:00 there across DST changes' }),
  from: From,
}, {
  title: 'Recurrence',
  description: 'How the task repeats; null when it does not. Completing it moves dueAt to the next occurrence and leaves it open',
  examples: [RECURRENCE_EXAMPLE],
})
export type RecurrenceJson = Static<typeof RecurrenceJson>

/** A series as a client sets it: the zone defaults to the user's, `from` to due. */
export const RecurrenceBody = Nullable(Type.Object({
  // Parsed by the validator's `rrule` format (recurrence/rule.ts): a wrong rule is one message saying why.
  rule: Type.String({ format: 'rrule', minLength: 1, maxLength: 500, description: RULE }),
  timezone: Type.Optional(TimeZone('The zone of the occurrences; by default the user\'s timezone (GET /api/v1/users/me)')),
  from: Type.Optional(From),
}, {
  additionalProperties: false,
  title: 'NewRecurrence',
  description: 'How the task repeats (it needs a dueAt: the first occurrence, and the time of day of all of them); null stops the series. ' +
    'A change starts the series anew from the current dueAt; nothing already recorded is recomputed',
  examples: [RECURRENCE_EXAMPLE],
}))
export type RecurrenceBody = Static<typeof RecurrenceBody>

export const CompletionJson = Type.Object({
  occurrence: DateTime({ description: 'The occurrence that was completed: the dueAt the task had' }),
  completedAt: DateTime({ description: 'When it was completed' }),
}, { title: 'Completion' })

const COMPLETION_EXAMPLE = { occurrence: '2026-11-27T08:00:00.000Z', completedAt: '2026-11-27T10:14:03.512Z' }

export const CompletionPageJson = Type.Object({
  items: Type.Array(CompletionJson, { description: 'Newest first' }),
  nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null on the last page' })),
}, { title: 'CompletionPage', examples: [{ items: [COMPLETION_EXAMPLE], nextCursor: null }] })

export const CompletionsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page' })),
}, { additionalProperties: false })
export type CompletionsQuery = Static<typeof CompletionsQuery>

export const OccurrencesQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 10 })),
}, { additionalProperties: false })

export const OccurrencesJson = Type.Object({
  items: Type.Array(Type.Object({ dueAt: DateTime() }, { title: 'Occurrence' }), {
    description: 'The current dueAt first, then the ones after it as if each were completed on time, until COUNT or UNTIL ends the ' +
      'series. A task that does not repeat has its dueAt alone (none without one, or once completed)',
  }),
}, { title: 'Occurrences', examples: [{ items: [{ dueAt: '2026-12-25T08:00:00.000Z' }, { dueAt: '2027-01-29T08:00:00.000Z' }] }] })
