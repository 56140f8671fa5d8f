import type { FastifyInstance, FastifyRequest } from 'fastify'
import { unauthorized } from './problem.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user; set by `requireUser` on every route of its scope. */
    userId: string
  }
}

export type Authenticate = (token: string) => Promise<string | null>

/**
 * Every route registered in `scope` (and its children) requires a valid Bearer token: a route
 * added there cannot forget the check. Every failure is the same 401, whatever was wrong.
 */
export function requireUser (scope: FastifyInstance, authenticate: Authenticate): void {
  scope.decorateRequest('userId', '')
  scope.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, security: [{ bearerAuth: [] }] } as typeof route.schema
  })
  scope.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization
    const match = header === undefined ? null : /^Bearer ([A-Za-z0-9_.~+/=-]+)$/i.exec(header)
    const userId = match?.[1] ? await authenticate(match[1]) : null
    if (userId === null) throw unauthorized()
    request.userId = userId
  })
}
