import { storableTime } from '../db/timestamps.js'

/**
 * An RRULE body (RFC 5545 section 3.3.10) as taskbase accepts it: a task repeats at most daily, at
 * the time of day of its dueAt, so FREQ is DAILY or coarser and BYHOUR, BYMINUTE and BYSECOND are
 * refused. Parsed here, with one message per rule saying what is wrong; evaluated in schedule.ts.
 */

export const FREQUENCIES = ['DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY'] as const
export type Frequency = (typeof FREQUENCIES)[number]

/** The parts taskbase accepts, in the order the messages list them. */
export const ACCEPTED_PARTS = ['FREQ', 'INTERVAL', 'COUNT', 'UNTIL', 'BYDAY', 'BYMONTHDAY', 'BYMONTH', 'BYSETPOS', 'WKST'] as const

const WEEKDAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU']
/** Whole numbers bounding what a series may hold: beyond them a rule is a typo, not a plan. */
export const MAX_INTERVAL = 1000
export const MAX_COUNT = 10_000
/** Days in each month at most (February in a leap year). */
const LONGEST_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** Where UNTIL ends the series: at an instant (`...Z`), or after a day in the series' zone (a date). */
export type Until = { instant: string } | { date: string }

export interface Rule {
  /** The rule as stored and sent back: the parts as given, in upper case. */
  text: string
  freq: Frequency
  count?: number
  until?: Until
  /** The rule without COUNT and UNTIL, which the schedule applies itself (schedule.ts). */
  pattern: string
}

export type ParsedRule = { ok: true, rule: Rule } | { ok: false, message: string }

const fail = (message: string): ParsedRule => ({ ok: false, message })

/** `1,-1` as whole numbers each within ±`max` and not 0; undefined when one is not. */
function numbers (value: string, max: number): number[] | undefined {
  const items = value.split(',')
  if (!items.every((item) => /^[+-]?\d{1,3}$/.test(item))) return undefined
  const parsed = items.map(Number)
  return parsed.every((n) => n !== 0 && Math.abs(n) <= max) ? parsed : undefined
}

/** `UNTIL=20261231T235959Z` or `UNTIL=20261231`; undefined for anything else (a local time included). */
function untilOf (value: string): Until | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})Z)?$/.exec(value)
  if (!m) return undefined
  const [, year, month, day, hour, minute, second] = m
  const date = `${year}-${month}-${day}`
  const time = storableTime(`${date}T${hour ?? '00'}:${minute ?? '00'}:${second ?? '00'}Z`)
  if (!time.ok) return undefined
  return hour === undefined ? { date } : { instant: time.iso }
}

/** Parses an RRULE body; on failure, what is wrong with it, as a message for `body.recurrence.rule`. */
export function parseRule (input: string): ParsedRule {
  const text = input.toUpperCase()
  if (text.startsWith('RRULE:')) return fail('must be the rule alone, without RRULE: (such as FREQ=WEEKLY;BYDAY=MO)')
  const parts = new Map<string, string>()
  for (const part of text.split(';')) {
    const m = /^([A-Z]+)=([^=]+)$/.exec(part)
    if (!m) return fail('must be NAME=VALUE parts separated by semicolons, such as FREQ=WEEKLY;BYDAY=MO,WE')
    const [, name, value] = m as unknown as [string, string, string]
    if (parts.has(name)) return fail(`names ${name} twice`)
    if (['BYHOUR', 'BYMINUTE', 'BYSECOND'].includes(name)) return fail(`may not have ${name}: the time of day comes from dueAt`)
    if (!(ACCEPTED_PARTS as readonly string[]).includes(name)) {
      return fail(`may not have ${name}; the parts taskbase accepts are ${ACCEPTED_PARTS.join(', ')}`)
    }
    parts.set(name, value)
  }

  const freq = parts.get('FREQ')
  if (freq === undefined) return fail('must have a FREQ: DAILY, WEEKLY, MONTHLY or YEARLY')
  if (['HOURLY', 'MINUTELY', 'SECONDLY'].includes(freq)) {
    return fail(`may not repeat ${freq}: a task repeats at most daily (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY)`)
  }
  if (!(FREQUENCIES as readonly string[]).includes(freq)) return fail('must have FREQ=DAILY, WEEKLY, MONTHLY or YEARLY')
  const frequency = freq as Frequency

  const interval = parts.get('INTERVAL')
  if (interval !== undefined && (!/^\d{1,4}$/.test(interval) || Number(interval) < 1 || Number(interval) > MAX_INTERVAL)) {
    return fail(`must have an INTERVAL from 1 to ${MAX_INTERVAL}`)
  }
  const countText = parts.get('COUNT')
  const untilText = parts.get('UNTIL')
  if (countText !== undefined && untilText !== undefined) return fail('may have COUNT or UNTIL, not both (RFC 5545)')
  if (countText !== undefined && (!/^\d{1,5}$/.test(countText) || Number(countText) < 1 || Number(countText) > MAX_COUNT)) {
    return fail(`must have a COUNT from 1 to ${MAX_COUNT.toLocaleString('en-US')}`)
  }
  const until = untilText === undefined ? undefined : untilOf(untilText)
  if (untilText !== undefined && until === undefined) {
    return fail('must have UNTIL as a UTC date-time such as 20261231T235959Z, or as a date such as 20261231')
  }

  const byDay = parts.get('BYDAY')
  if (byDay !== undefined) {
    for (const item of byDay.split(',')) {
      const m = /^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$/.exec(item)
      if (!m) return fail('must have BYDAY as weekdays (MO, TU, WE, TH, FR, SA, SU), each with an optional position such as -1FR or 2MO')
      if (m[1] === undefined) continue
      if (frequency !== 'MONTHLY' && frequency !== 'YEARLY') return fail('may have BYDAY positions (such as -1FR) only with FREQ=MONTHLY or YEARLY')
      const position = Number(m[1])
      const max = frequency === 'MONTHLY' ? 5 : 53
      if (position === 0 || Math.abs(position) > max) return fail(`must have BYDAY positions from -${max} to ${max}, not 0, with FREQ=${frequency}`)
    }
  }
  const monthDays = parts.has('BYMONTHDAY') ? numbers(parts.get('BYMONTHDAY')!, 31) : undefined
  if (parts.has('BYMONTHDAY')) {
    if (monthDays === undefined) return fail('must have BYMONTHDAY as days from 1 to 31, or from -1 (the last day) to -31')
    if (frequency === 'WEEKLY') return fail('may not have BYMONTHDAY with FREQ=WEEKLY (RFC 5545)')
  }
  const months = parts.has('BYMONTH') ? numbers(parts.get('BYMONTH')!, 12) : undefined
  if (parts.has('BYMONTH') && (months === undefined || months.some((m) => m < 1))) {
    return fail('must have BYMONTH as months from 1 to 12')
  }
  if (monthDays && months && !months.some((month) => monthDays.some((day) => Math.abs(day) <= LONGEST_MONTH[month - 1]!))) {
    return fail('never matches a date: no month in BYMONTH has a day in BYMONTHDAY')
  }
  if (parts.has('BYSETPOS')) {
    if (numbers(parts.get('BYSETPOS')!, 366) === undefined) return fail('must have BYSETPOS as positions from 1 to 366, or from -1 (the last) to -366')
    if (!['BYDAY', 'BYMONTHDAY', 'BYMONTH'].some((name) => parts.has(name))) {
      return fail('may have BYSETPOS only with another BY part to choose among, such as BYDAY (RFC 5545)')
    }
  }
  const weekStart = parts.get('WKST')
  if (weekStart !== undefined && !WEEKDAYS.includes(weekStart)) return fail('must have WKST as a weekday: MO, TU, WE, TH, FR, SA or SU')

  const pattern = [...parts].filter(([name]) => name !== 'COUNT' && name !== 'UNTIL').map(([name, value]) => `${name}=${value}`).join(';')
  return {
    ok: true,
    rule: {
      text: [...parts].map(([name, value]) => `${name}=${value}`).join(';'),
      freq: frequency,
      ...(countText !== undefined && { count: Number(countText) }),
      ...(until !== undefined && { until }),
      pattern,
    },
  }
}

/** A rule the schema's `rrule` format has accepted. */
export function ruleOf (text: string): Rule {
  const parsed = parseRule(text)
  if (!parsed.ok) throw new TypeError(`not an accepted rule: ${parsed.message}`)
  return parsed.rule
}
