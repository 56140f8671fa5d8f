import type { FastifyReply } from 'fastify'
import { Type, type Static, type TSchema } from 'typebox'
import { ProblemJson } from './problem.js'

export const Uuid = Type.String({ format: 'uuid' })

/**
 * An RFC 3339 time with a zone that we can store exactly: the validator's `date-time` format is
 * ours (db/timestamps.ts), refusing leap seconds and instants outside 0001-9999.
 */
export const DateTime = ({ description, ...options }: { description?: string, examples?: string[] } = {}) =>
  Type.String({
    format: 'date-time',
    description: `${description ?? 'RFC 3339 with an offset'}; in the years 0001-9999, no leap second (23:59:60); kept to the millisecond`,
    ...options,
  })

/**
 * An IANA time zone name (`Europe/Berlin`, `UTC`): the validator's `time-zone` format asks the
 * time-zone database (recurrence/zones.ts). Stored as that database spells it.
 */
export const TimeZone = (description: string) =>
  Type.String({ format: 'time-zone', minLength: 1, maxLength: 64, description: `${description}; an IANA time zone name, such as Europe/Berlin or UTC` })

/** What each error status means, unless a route says more precisely. */
const MEANINGS: Record<number, string> = {
  400: 'The request does not match the schema, or holds text that cannot be stored as sent (a NUL character, a lone surrogate); `errors` names each wrong field',
  401: 'No valid access token: missing, malformed, expired, or its user deleted',
  403: 'Not allowed',
  404: 'Not found, or not yours (the same answer either way)',
  409: 'In conflict with the current state',
  410: 'Gone',
  412: 'The ETag in If-Match is no longer current (type precondition-failed): another device changed the task; fetch it and retry',
  413: 'The body is larger than the server accepts (64 KiB by default)',
  415: 'The body is not application/json',
  422: 'Well-formed, but cannot be done',
  429: 'Too many requests (type rate-limited); retry after Retry-After seconds',
  503: 'The database cannot be reached right now (type database-unavailable); retry after Retry-After',
}

/**
 * The error responses a route documents, each a problem+json body (also how they are serialized):
 * a status with its usual meaning, or `[status, meaning]` where the route can say more.
 */
export const errorResponses = (...entries: Array<number | [number, string]>) => Object.fromEntries(entries.map((entry) => {
  const [status, description] = typeof entry === 'number' ? [entry, MEANINGS[entry] ?? 'An error'] : entry
  return [status, { description, content: { 'application/problem+json': { schema: ProblemJson } } }]
})) as Record<number, { description: string, content: Record<string, { schema: typeof ProblemJson }> }>

/**
 * `T | null` as `type: [T, "null"]`, not `anyOf`: a wrong value then gets one error ("must be
 * string,null") instead of one per branch.
 */
export const Nullable = <T extends TSchema>(schema: T) => {
  const { type, enum: values } = schema as { type?: string, enum?: unknown[] }
  // An enum lists null too, or null would pass `type` and fail `enum`.
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [type, 'null'], ...(values && { enum: [...values, null] }) })
}

/** A closed set of strings, as one `enum` (one error on a wrong value, not one per choice). */
export const StringEnum = <const T extends readonly string[]>(values: T, options: object = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: values, ...options })

/**
 * Ends a 204 or 304 with no body at all. `send(null)` would run the route's serializer and, for a
 * 304, announce a 4-byte "null" body that never comes.
 */
export const sendEmpty = (reply: { code (status: number): unknown }, status: 204 | 304) =>
  (reply.code(status) as FastifyReply).send()

/** The header of a create that may be retried: `POST /api/v1/tasks` and `POST /api/v1/projects`. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1, maxLength: 255, description: 'A retry with the same key and body returns the first answer; kept 24 hours',
  })),
})
