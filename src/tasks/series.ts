import { toStoredTime } from '../db/timestamps.js'
import { badRequest, notRepeating } from '../http/problem.js'
import { ruleOf } from '../recurrence/rule.js'
import { following, localTime, startProblem, type Recurrence } from '../recurrence/schedule.js'
import { zoneName } from '../recurrence/zones.js'
import type { Task, UpdateTaskBody } from './schemas.js'

/**
 * What a write of a recurring task changes, decided from the task as the write locked it. Pure:
 * queries.ts locks the row, asks `planWrite`, and writes the plan in the same transaction.
 */

/** A task as a locked write sees it: its JSON, where its series stands, and its owner's zone. */
export interface LockedTask extends Task {
  /** Recurrence's wall-clock current occurrence (schedule.ts, Position.local); null when it does not repeat. */
  dueLocal: string | null
  occurrenceIndex: number
  userTimezone: string
}

export interface WriteOptions {
  /**
   * A classic PUT, which replaces every field: an omitted due date is null on a task that does not
   * repeat and kept on one that does (a front end that does not know recurrence never stops a
   * series, nor leaves one without a dueAt); a due date sent with a completion of an occurrence is
   * the one the client read, and the completion decides the next.
   */
  replacing?: boolean
  /** POST /tasks/{id}/skip: the next occurrence, and no completion recorded. */
  skip?: boolean
  now: Date
}

/** The columns a locked write sets, and what goes with them. */
export interface Plan {
  dueAt: string | null
  completed: boolean
  recurrence: Recurrence | null
  dueLocal: string | null
  occurrenceIndex: number
  /** The occurrence to record in the history (the dueAt it had), when one is completed. */
  completes?: string
  /** The descendants: reopened for a new occurrence, or completed with the task. */
  subtasks?: 'reopen' | 'complete'
}

const sameRecurrence = (a: Recurrence | null, b: Recurrence | null) =>
  a !== null && b !== null && a.rule === b.rule && a.timezone === b.timezone && a.from === b.from

/** The series a body sets, in stored form: the rule in upper case, the zone as the database spells it. */
export function recurrenceOf (given: NonNullable<UpdateTaskBody['recurrence']>, userTimezone: string): Recurrence {
  return {
    rule: ruleOf(given.rule).text,
    timezone: zoneName(given.timezone ?? userTimezone) ?? 'UTC',
    from: given.from ?? 'due',
  }
}

export const dueAtRequired = (nulled: boolean) => badRequest('A recurring task needs a dueAt: its next occurrence',
  [{ path: 'body.dueAt', message: nulled
    ? 'cannot be null while the task repeats; send recurrence: null to stop the series'
    : 'is required for a recurring task: its first occurrence, which also gives the time of day of the others' }])

/** A series that cannot start at `dueAt` (an UNTIL before it, a rule that never matches): a 400 naming the rule. */
export function checkStart (recurrence: Recurrence, dueAt: string) {
  const problem = startProblem(ruleOf(recurrence.rule), recurrence.timezone, dueAt)
  if (problem !== undefined) throw badRequest(`The recurrence rule cannot start at dueAt: it ${problem}`, [{ path: 'body.recurrence.rule', message: problem }])
}

/** The state after `changes` (or a skip) to `task`; throws the refusal when there is none. */
export function planWrite (task: LockedTask, changes: UpdateTaskBody, { replacing = false, skip = false, now }: WriteOptions): Plan {
  if (skip && (task.recurrence === null || task.completed)) throw notRepeating()
  let recurrence = task.recurrence
  let restarted = false
  if (changes.recurrence === null) recurrence = null
  else if (changes.recurrence !== undefined) {
    const given = recurrenceOf(changes.recurrence, task.userTimezone)
    // The series the task already has, sent back (a PUT of what was read): nothing starts anew.
    if (!sameRecurrence(given, task.recurrence)) {
      recurrence = given
      restarted = true
    }
  }

  const completing = !skip && changes.completed === true && !task.completed && recurrence !== null
  let dueAt = task.dueAt
  if (changes.dueAt !== undefined) {
    const given = changes.dueAt === null ? null : toStoredTime(changes.dueAt)
    if (completing && given !== task.dueAt) {
      if (!replacing) {
        throw badRequest('Completing an occurrence moves dueAt to the next one: change dueAt in a request of its own',
          [{ path: 'body.dueAt', message: 'cannot change in the request that completes an occurrence of a recurring task' }])
      }
    } else dueAt = given
  } else if (replacing && recurrence === null) dueAt = null
  if (recurrence !== null && dueAt === null) throw dueAtRequired(changes.dueAt === null)

  let dueLocal: string | null = null
  let occurrenceIndex = 1
  if (recurrence !== null && dueAt !== null) {
    occurrenceIndex = restarted ? 1 : task.occurrenceIndex
    // The wall-clock occurrence is kept while dueAt is: it may be 02:30 where dueAt says 03:30.
    dueLocal = !restarted && task.dueLocal !== null && dueAt === task.dueAt ? task.dueLocal : localTime(dueAt, recurrence.timezone)
    if (restarted) checkStart(recurrence, dueAt)
  }

  const plan: Plan = { dueAt, completed: changes.completed ?? task.completed, recurrence, dueLocal, occurrenceIndex }
  if ((completing || skip) && recurrence !== null && dueAt !== null && dueLocal !== null) {
    if (!skip) plan.completes = dueAt
    const next = following(ruleOf(recurrence.rule), recurrence, { dueAt, local: dueLocal, index: occurrenceIndex }, now)
    if (next === undefined) {
      // The series is over: the task completes for good and keeps its last dueAt.
      plan.completed = true
      plan.subtasks = 'complete'
    } else {
      Object.assign(plan, { dueAt: next.dueAt, dueLocal: next.local, occurrenceIndex: next.index, completed: false, subtasks: 'reopen' })
    }
  } else if (plan.completed && !task.completed) plan.subtasks = 'complete'
  return plan
}

/** Where a page of the history ended: the last completion's id. */
export function encodeHistoryCursor (id: number): string {
  return Buffer.from(JSON.stringify({ before: id })).toString('base64url')
}

/** The id the next page starts below, or a 400 naming the parameter: cursors are opaque, so any other shape is forged or corrupt. */
export function decodeHistoryCursor (raw: string): number {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
  } catch {
    parsed = undefined
  }
  const before = (parsed as { before?: unknown } | undefined)?.before
  if (Number.isSafeInteger(before) && (before as number) > 0) return before as number
  throw badRequest('The cursor is not valid', [{ path: 'query.cursor', message: 'is not a cursor returned by this API' }])
}
