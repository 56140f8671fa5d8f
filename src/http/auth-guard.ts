import type { FastifyInstance, FastifyRequest } from 'fastify'
import { unauthorized } from './problem.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user; set by `requireUser` on every route of its scope. */
    userId: string
    /** The `sub` of an external identity provider's token; undefined for our own tokens. */
    authSubject: string | undefined
  }
}

export interface Principal {
  userId: string
  authSubject?: string
}

/** The user a token proves, or null for any invalid token. May throw a Problem (e.g. a 503). */
export type Authenticate = (token: string) => Promise<Principal | null>

/** The token of an `Authorization: Bearer <token>` header; undefined for anything else. */
export function bearerToken (header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^Bearer ([A-Za-z0-9_.~+/=-]+)$/i.exec(header)?.[1]
}

/**
 * Every route registered in `scope` (and its children) requires a valid Bearer token: a route
 * added there cannot forget the check. Every failure is the same 401, whatever was wrong.
 */
export function requireUser (scope: FastifyInstance, authenticate: Authenticate): void {
  scope.decorateRequest('userId', '')
  scope.decorateRequest('authSubject', undefined)
  scope.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, security: [{ bearerAuth: [] }] } as typeof route.schema
  })
  scope.addHook('onRequest', async (request: FastifyRequest) => {
    const token = bearerToken(request.headers.authorization)
    const principal = token ? await authenticate(token) : null
    if (principal === null) throw unauthorized()
    request.userId = principal.userId
    request.authSubject = principal.authSubject
  })
}
