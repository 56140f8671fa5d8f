/**
 * Times cross two boundaries, both parsed exactly here and nowhere else:
 * - in: an RFC 3339 string from a client becomes the canonical `YYYY-MM-DDTHH:MM:SS.sssZ` we store;
 * - out: PostgreSQL's text (`0016-10-15 04:14:14+00`) becomes the same canonical string.
 * `new Date(text)` is wrong for both: Node's non-ISO parser reads year 0016 as 2016 (or as an invalid
 * date), and a leap second `23:59:60Z` passes JSON-schema `date-time` but is an invalid Date.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
const daysIn = (year: number, month: number) =>
  month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31

/** Milliseconds since the epoch of a proleptic Gregorian UTC time; right for years 1-99 too (Date.UTC is not). */
function epochMs (year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number): number {
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, ms)
  return date.getTime()
}

/** The earliest and latest instants we store: PostgreSQL has no year 0, and JSON clients expect 4 digits. */
const EARLIEST = epochMs(1, 1, 1, 0, 0, 0, 0)
const LATEST = epochMs(9999, 12, 31, 23, 59, 59, 999)

export type StorableTime = { ok: true, iso: string } | { ok: false, reason: string }

/**
 * An RFC 3339 date-time with a zone, as the instant we store: UTC, to the millisecond (further digits
 * are dropped, as JavaScript does). Refused: anything else, leap seconds, and instants outside
 * 0001-01-01 to 9999-12-31 once the offset is applied.
 */
export function storableTime (text: string): StorableTime {
  const m = RFC3339.exec(text)
  if (!m) return { ok: false, reason: 'is not an RFC 3339 date-time with a time zone' }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59) {
    return { ok: false, reason: 'is not a valid date and time' }
  }
  if (second === 60) return { ok: false, reason: 'is a leap second (:60), which cannot be stored; send :59 or the next second' }
  if (second > 59) return { ok: false, reason: 'is not a valid date and time' }
  const offsetHours = Number(m[10] ?? 0)
  const offsetMinutes = Number(m[11] ?? 0)
  if (offsetHours > 23 || offsetMinutes > 59) return { ok: false, reason: 'has an invalid time-zone offset' }
  const ms = Number((m[7] ?? '').slice(0, 3).padEnd(3, '0'))
  const offset = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000
  const time = epochMs(year, month, day, hour, minute, second, ms) - offset
  if (year === 0 || time < EARLIEST || time > LATEST) {
    return { ok: false, reason: 'is outside the years 0001 to 9999 (in UTC)' }
  }
  return { ok: true, iso: new Date(time).toISOString() }
}

/** The stored form of a time the schema has already accepted (see `storableTime`). */
export function toStoredTime (text: string): string {
  const result = storableTime(text)
  if (!result.ok) throw new TypeError(`not a storable time: ${result.reason}`)
  return result.iso
}

const POSTGRES_ANY = /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$/

/**
 * PostgreSQL's text output of a timestamptz (DateStyle ISO, any session time zone) as
 * `YYYY-MM-DDTHH:MM:SS.sssZ`. Exact for every value PostgreSQL can hold: years below 1000 keep their
 * four digits; a value outside 0001-9999 (never written by taskbase) comes out in the extended ISO
 * form rather than failing the read.
 */
export function timeFromPostgres (text: string): string {
  // The common case, sliced without a regular expression: a regex's match array and its eight
  // strings, for four times per task, were 13% of what a list request allocated (issue 21).
  // `YYYY-MM-DD HH:MM:SS+00`, or with 1 to 6 fraction digits before the offset.
  const length = text.length
  if (length >= 22 && length <= 29 && length !== 23 && text.charCodeAt(4) === 45 && text.charCodeAt(10) === 32 &&
    text.endsWith('+00') && (length === 22 || text.charCodeAt(19) === 46)) {
    const fraction = length === 22 ? '000' : length >= 26 ? text.slice(20, 23) : text.slice(20, length - 3).padEnd(3, '0')
    return `${text.slice(0, 10)}T${text.slice(11, 19)}.${fraction}Z`
  }
  const m = POSTGRES_ANY.exec(text)
  if (!m) {
    if (text === 'infinity' || text === '-infinity') return text
    throw new TypeError(`unexpected timestamptz text from PostgreSQL: ${JSON.stringify(text)}`)
  }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const ms = Number((m[7] ?? '').slice(0, 3).padEnd(3, '0'))
  const offset = (m[8] === '-' ? -1 : 1) * ((Number(m[9] ?? 0) * 60 + Number(m[10] ?? 0)) * 60 + Number(m[11] ?? 0)) * 1000
  // 1 BC is year 0 of the proleptic calendar JavaScript counts in.
  const fullYear = m[12] ? 1 - year : year
  return new Date(epochMs(fullYear, month, day, hour, minute, second, ms) - offset).toISOString()
}
