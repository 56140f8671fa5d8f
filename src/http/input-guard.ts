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

/** Refuses, on every route and field, text PostgreSQL cannot store exactly as sent. */
export function refuseUnstorableText (app: FastifyInstance): void {
  app.addHook('preValidation', (request, _reply, done) => {
    const found = findUnstorableText(request.body, 'body') ?? findUnstorableText(request.query, 'query')
    done(found === undefined
      ? undefined
      : badRequest('Text in the request cannot be stored as sent (a NUL character or a lone surrogate)', [found]))
  })
}
