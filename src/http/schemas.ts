import type { FastifyReply } from 'fastify'
import { Type, type Static, type TSchema } from '@fastify/type-provider-typebox'
import { ProblemJson } from './problem.js'

export const Uuid = Type.String({ format: 'uuid' })

/**
 * An RFC 3339 time with a zone that we can store exactly: the validator's `date-time` format is
 * ours (db/timestamps.ts), refusing leap seconds and instants outside 0001-9999.
 */
export const DateTime = (options: { description?: string, examples?: string[] } = {}) =>
  Type.String({ format: 'date-time', ...options })

/** The error responses a route documents; each is a problem+json body. */
export const errorResponses = <S extends number>(...statuses: S[]) =>
  Object.fromEntries(statuses.map((status) => [status, ProblemJson])) as Record<S, typeof ProblemJson>

/**
 * `T | null` as `type: [T, "null"]`, not `anyOf`: a wrong value then gets one error ("must be
 * string,null") instead of one per branch.
 */
export const Nullable = <T extends TSchema>(schema: T) =>
  Type.Unsafe<Static<T> | null>({ ...schema, type: [(schema as { type?: string }).type, 'null'] })

/** A closed set of strings, as one `enum` (one error on a wrong value, not one per choice). */
export const StringEnum = <const T extends readonly string[]>(values: T, options: object = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: values, ...options })

/**
 * Ends a 204 or 304 with no body at all. `send(null)` would run the route's serializer and, for a
 * 304, announce a 4-byte "null" body that never comes.
 */
export const sendEmpty = (reply: { code (status: number): unknown }, status: 204 | 304) =>
  (reply.code(status) as FastifyReply).send()
