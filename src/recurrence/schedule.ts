import { RRuleTemporal } from 'rrule-temporal'
import { Temporal } from 'temporal-polyfill'
import type { Rule } from './rule.js'

/**
 * When a series' occurrences fall. The calendar (which days: BYDAY, BYSETPOS, INTERVAL, "the
 * 31st") is rrule-temporal's, evaluated on wall-clock times: the rule runs in UTC, where every
 * local time exists once, on the local date and time of day of the series. Each wall-clock
 * occurrence then becomes an instant in the series' zone with Temporal's `compatible`
 * disambiguation, which is RFC 5545 section 3.3.5's: a time that does not exist that day (02:30 on
 * the spring change) moves forward by the gap (03:30), and one that happens twice is its first
 * instant. rrule-temporal evaluated in the zone itself drops a nonexistent occurrence (RFC 5545
 * section 3.3.10's reading), which would make a daily 02:30 task skip the day of the change.
 *
 * Nothing here reads the process's time zone: zones are named, instants are UTC.
 */

/** A series as a task carries it. */
export interface Recurrence {
  rule: string
  timezone: string
  from: 'due' | 'completion'
}

/** Where a series stands: its current occurrence. */
export interface Position {
  /** The occurrence as an instant, RFC 3339 UTC to the millisecond: the task's dueAt. */
  dueAt: string
  /**
   * The occurrence as a wall-clock time in the series' zone, `2026-03-29T02:30:00.000`, before a
   * DST gap moved it: the time of day the next occurrences keep (dueAt says 03:30 that day).
   */
  local: string
  /** Its place in the series, 1 for the first: COUNT is counted against it. */
  index: number
}

/** The latest instant taskbase stores; a series ends before it. */
const LATEST = Temporal.Instant.from('9999-12-31T23:59:59.999Z')

const ms = { smallestUnit: 'millisecond' } as const

/** The wall-clock time of `instant` in `timezone`, as `Position.local` holds it. */
export function localTime (instant: string, timezone: string): string {
  return Temporal.Instant.from(instant).toZonedDateTimeISO(timezone).toPlainDateTime().toString(ms)
}

/**
 * The instant of wall-clock time `local` in `timezone`: in a DST gap, moved forward by the gap;
 * repeated (the autumn change), the first of the two instants.
 */
export function instantAt (local: string | Temporal.PlainDateTime, timezone: string): Temporal.Instant {
  return Temporal.PlainDateTime.from(local).toZonedDateTime(timezone, { disambiguation: 'compatible' }).toInstant()
}

/** A wall-clock time as the rule evaluates it: the same fields, in UTC, which has no gaps. */
const floating = (local: string | Temporal.PlainDateTime) => Temporal.PlainDateTime.from(local).toZonedDateTime('UTC')

/**
 * The series' occurrences from `start` on (start first, as RFC 5545 counts DTSTART whether or not
 * the rule matches it), with COUNT as what is left of it; undefined when nothing is left.
 */
function seriesFrom (rule: Rule, start: string, index: number): RRuleTemporal<Temporal.ZonedDateTime> | undefined {
  const left = rule.count === undefined ? undefined : rule.count - index + 1
  if (left !== undefined && left < 1) return undefined
  return new RRuleTemporal({
    temporal: Temporal,
    rruleString: left === undefined ? rule.pattern : `${rule.pattern};COUNT=${left}`,
    dtstart: floating(start),
    includeDtstart: true,
  })
}

/** Whether an occurrence is still inside UNTIL and the years taskbase stores. */
function inBounds (rule: Rule, local: Temporal.PlainDateTime, instant: Temporal.Instant): boolean {
  if (Temporal.Instant.compare(instant, LATEST) > 0) return false
  const until = rule.until
  if (until === undefined) return true
  return 'instant' in until
    ? Temporal.Instant.compare(instant, Temporal.Instant.from(until.instant)) <= 0
    : Temporal.PlainDate.compare(local.toPlainDate(), Temporal.PlainDate.from(until.date)) <= 0
}

/** An occurrence found: where the series stands once it is the current one. */
function positionOf (local: Temporal.PlainDateTime, instant: Temporal.Instant, index: number): Position {
  return { dueAt: instant.toString(ms), local: local.toString(ms), index }
}

/**
 * The first occurrence of `series` after its start whose instant is after `after`, with its place;
 * undefined when the series ends first. A rule that never matches again within rrule-temporal's
 * search (10,000 periods) ends too: the task can then be completed, never stuck.
 */
function firstAfter (rule: Rule, series: RRuleTemporal<Temporal.ZonedDateTime>, timezone: string, after: Temporal.Instant,
  start: { local: string, index: number }): Position | undefined {
  const startIndex = start.index
  const later = (z: Temporal.ZonedDateTime) => Temporal.Instant.compare(instantAt(z.toPlainDateTime(), timezone), after) > 0
  let found: { local: Temporal.PlainDateTime, index: number } | undefined
  try {
    if (rule.count !== undefined) {
      // At most COUNT occurrences: walk them, counting, to the first one that is late enough.
      series.all((z, i) => {
        if (i > 0 && later(z)) {
          found = { local: z.toPlainDateTime(), index: startIndex + i }
          return false
        }
        return true
      })
    } else {
      // Unbounded: jump to the wall-clock time of `after` (never to the start itself: next() is
      // strictly after its argument), then step over the few (a DST fold) that are not later as
      // instants. The place in the series does not matter without COUNT.
      const afterLocal = after.toZonedDateTimeISO(timezone).toPlainDateTime()
      const startLocal = Temporal.PlainDateTime.from(start.local)
      let z = series.next(floating(Temporal.PlainDateTime.compare(afterLocal, startLocal) > 0 ? afterLocal : startLocal))
      while (z !== null && !later(z)) z = series.next(z)
      if (z !== null) found = { local: z.toPlainDateTime(), index: startIndex + 1 }
    }
  } catch (error) {
    if (!(error instanceof Error && /Maximum iterations/.test(error.message))) throw error
    return undefined
  }
  if (found === undefined) return undefined
  const instant = instantAt(found.local, timezone)
  return inBounds(rule, found.local, instant) ? positionOf(found.local, instant, found.index) : undefined
}

/**
 * Where the series goes when its current occurrence is completed (or skipped) at `now`; undefined
 * when it is over (COUNT or UNTIL used up). With `from: "due"`, the first occurrence after the
 * current one and after now, so an overdue daily task is not owed once per missed day; with
 * `from: "completion"`, counted from the day of `now` in the series' zone (Todoist's `every!`).
 */
export function following (rule: Rule, recurrence: Recurrence, current: Position, now: Date): Position | undefined {
  const nowInstant = Temporal.Instant.fromEpochMilliseconds(now.getTime())
  const { timezone } = recurrence
  if (recurrence.from === 'completion') {
    // Today, in the series' zone, at the series' time of day: the next one is counted from there.
    const today = nowInstant.toZonedDateTimeISO(timezone).toPlainDate()
    const start = today.toPlainDateTime(Temporal.PlainDateTime.from(current.local).toPlainTime()).toString(ms)
    const series = seriesFrom(rule, start, current.index)
    return series && firstAfter(rule, series, timezone, nowInstant, { local: start, index: current.index })
  }
  const series = seriesFrom(rule, current.local, current.index)
  const currentInstant = Temporal.Instant.from(current.dueAt)
  const after = Temporal.Instant.compare(nowInstant, currentInstant) > 0 ? nowInstant : currentInstant
  return series && firstAfter(rule, series, timezone, after, current)
}

/**
 * The due dates of the series from its current occurrence on, at most `limit`, as if each were
 * completed on time: the current dueAt first.
 */
export function upcoming (rule: Rule, recurrence: Recurrence, current: Position, limit: number): string[] {
  const dates = [current.dueAt]
  const series = seriesFrom(rule, current.local, current.index)
  if (series === undefined || limit <= 1) return dates.slice(0, limit)
  try {
    series.all((z, i) => {
      if (i === 0) return true
      const local = z.toPlainDateTime()
      const instant = instantAt(local, recurrence.timezone)
      if (!inBounds(rule, local, instant)) return false
      dates.push(instant.toString(ms))
      return dates.length < limit
    })
  } catch (error) {
    if (!(error instanceof Error && /Maximum iterations/.test(error.message))) throw error
  }
  return dates
}

/**
 * Why the series cannot start at `dueAt`, as a message for `body.recurrence.rule`; undefined when it
 * can. Refused: an UNTIL before the first occurrence, and a rule that never matches a date after it.
 */
export function startProblem (rule: Rule, timezone: string, dueAt: string): string | undefined {
  const local = Temporal.PlainDateTime.from(localTime(dueAt, timezone))
  if (!inBounds(rule, local, Temporal.Instant.from(dueAt))) {
    return 'has an UNTIL before dueAt, the first occurrence'
  }
  if (rule.count === 1) return undefined
  // The pattern alone: does any date after the first match it?
  const series = seriesFrom({ ...rule, count: undefined, until: undefined }, local.toString(ms), 1)!
  try {
    if (series.next(floating(local)) === null) return 'never matches a date after dueAt'
  } catch (error) {
    if (!(error instanceof Error && /Maximum iterations/.test(error.message))) throw error
    return 'never matches a date after dueAt'
  }
  return undefined
}
