import type { FastifyInstance } from 'fastify'
import { badRequest } from './problem.js'

/** In unicode mode a valid pair is one code point, so only a lone surrogate is of category Cs. */
const LONE_SURROGATE = /\p{Cs}/u

/** Why a piece of text cannot be stored as it is, or undefined when it can. */
function unstorable (text: string): string | undefined {
  // PostgreSQL text cannot hold U+0000: the value would fail deep in a query.
  if (text.includes('\u0000')) return 'must not contain the NUL character'
  // A lone UTF-16 surrogate (JSON allows "\ud800") has no UTF-8 form: the driver would store
  // U+FFFD instead, silently changing what the client sent.
  if (LONE_SURROGATE.test(text)) return 'must not contain a lone UTF-16 surrogate'
  return undefined
}

/**
 * The first string (value or key) of a parsed body or query that cannot be stored, with its path
 * as `body.tags.2`. Iterative, so deeply nested JSON cannot overflow the stack.
 */
export function findUnstorableText (root: unknown, rootPath: string): { path: string, message: string } | undefined {
  const stack: Array<[unknown, string]> = [[root, rootPath]]
  while (stack.length > 0) {
    const [value, path] = stack.pop()!
    if (typeof value === 'string') {
      const message = unstorable(value)
      if (message) return { path, message }
    } else if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        const message = unstorable(key)
        if (message) return { path, message: `has a key that ${message}` }
        stack.push([child, `${path}.${key}`])
      }
    }
  }
  return undefined
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's query parameters of type integer (set by `guardInput`). */
    integerQuery?: string[]
    /**
     * The handler refuses text it cannot store itself, where that refusal belongs (MCP: inside a
     * tool's arguments, as a tool result, not as an HTTP 400).
     */
    guardsOwnText?: boolean
  }
}

const DECIMAL = /^[0-9]+$/

/**
 * The first integer query parameter written other than in plain decimal digits. The validator
 * coerces query strings with JavaScript's Number(): `limit=1e2`, `0x10` and ` 5` would all pass.
 */
function lenientInteger (query: unknown, names: string[]): { path: string, message: string } | undefined {
  for (const name of names) {
    const raw = (query as Record<string, unknown>)[name]
    for (const value of [raw].flat()) {
      if (typeof value === 'string' && !DECIMAL.test(value)) {
        return { path: `query.${name}`, message: 'must be a whole number written in decimal digits only' }
      }
    }
  }
  return undefined
}

/**
 * Refuses, on every route and field, text PostgreSQL cannot store exactly as sent, and integers in
 * the query string in any form but plain digits.
 */
export function guardInput (app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const properties = (route.schema?.querystring as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {}
    const integers = Object.entries(properties).filter(([, schema]) => schema.type === 'integer').map(([name]) => name)
    if (integers.length > 0) route.config = { ...route.config, integerQuery: integers }
  })
  app.addHook('preValidation', (request, _reply, done) => {
    const text = request.routeOptions.config.guardsOwnText
      ? undefined
      : findUnstorableText(request.body, 'body') ?? findUnstorableText(request.query, 'query')
    if (text) return done(badRequest('Text in the request cannot be stored as sent (a NUL character or a lone surrogate)', [text]))
    const integers = request.routeOptions.config.integerQuery
    const number = integers && lenientInteger(request.query, integers)
    done(number ? badRequest('The request query does not match the schema', [number]) : undefined)
  })
}
