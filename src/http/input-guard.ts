import type { FastifyInstance } from 'fastify'
import { badRequest } from './problem.js'

/**
 * Where the first NUL character is in a parsed body or query, as `body.tags.2`. PostgreSQL text
 * cannot hold U+0000, so such a value would fail deep in a query; it is refused up front instead,
 * for every route and field. Iterative, so deeply nested JSON cannot overflow the stack.
 */
export function findNul (root: unknown, rootPath: string): string | undefined {
  const stack: Array<[unknown, string]> = [[root, rootPath]]
  while (stack.length > 0) {
    const [value, path] = stack.pop()!
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path
    } else if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        if (key.includes('\u0000')) return path
        stack.push([child, `${path}.${key}`])
      }
    }
  }
  return undefined
}

export function refuseNulCharacters (app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const path = findNul(request.body, 'body') ?? findNul(request.query, 'query')
    if (path !== undefined) {
      throw badRequest('Text in the request contains a NUL character (\\u0000), which cannot be stored',
        [{ path, message: 'must not contain the NUL character' }])
    }
  })
}
