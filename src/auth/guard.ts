import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Authenticate, Principal } from './authenticate.js'
import { tokenRequired, unauthorized, type Problem } from '../http/problem.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route also accepts `?ticket=` (from POST /events/tickets) instead of the header: a browser's
     * EventSource cannot send headers.
     */
    ticketAuth?: boolean
  }
  interface FastifyRequest {
    /** The authenticated user; set by `requireUser` on every route of its scope. */
    userId: string
    /** The whole principal: session and token expiry, for routes that outlive a request (events). */
    principal: Principal | undefined
    /** The `sub` of an external identity provider's token; undefined for our own tokens. */
    authSubject: string | undefined
  }
}

/** The token of an `Authorization: Bearer <token>` header; undefined for anything else. */
export function bearerToken (header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^Bearer ([A-Za-z0-9_.~+/=-]+)$/i.exec(header)?.[1]
}

/** Trades a single-use ticket for the principal that bought it; undefined when unknown, used or expired. */
export type RedeemTicket = (ticket: string) => Promise<Principal | undefined>

export interface RequireUserOptions {
  /** Accepts `?ticket=` on routes with `config.ticketAuth`. */
  redeemTicket?: RedeemTicket
  /**
   * The 401's `WWW-Authenticate` value for this request; `Bearer` when omitted. MCP clients find
   * where to get a token from its `resource_metadata` (RFC 9728, section 5.1).
   */
  challenge?: (request: FastifyRequest) => string
}

/**
 * Every route registered in `scope` (and its children) requires a valid Bearer token (or, on a
 * route with `config.ticketAuth`, a ticket): a route added there cannot forget the check. Every
 * failure is the same 401, whatever was wrong.
 */
export function requireUser (scope: FastifyInstance, authenticate: Authenticate, { redeemTicket, challenge }: RequireUserOptions = {}): void {
  scope.decorateRequest('userId', '')
  scope.decorateRequest('principal', undefined)
  scope.decorateRequest('authSubject', undefined)
  scope.addHook('onRoute', (route) => {
    const security: Array<Record<string, string[]>> = route.config?.ticketAuth ? [{ bearerAuth: [] }, { eventTicket: [] }] : [{ bearerAuth: [] }]
    route.schema = { ...route.schema, security } as typeof route.schema
  })
  const admit = (request: FastifyRequest, principal: Principal | null): Problem | undefined => {
    if (principal === null) return challenge ? tokenRequired(challenge(request)) : unauthorized()
    request.userId = principal.userId
    request.principal = principal
    request.authSubject = principal.authSubject
    return undefined
  }
  const lookUp = async (request: FastifyRequest, token: string | undefined): Promise<Principal | null> => {
    if (token) return authenticate(token)
    const ticket = (request.query as { ticket?: unknown }).ticket
    if (request.routeOptions.config.ticketAuth && redeemTicket && typeof ticket === 'string' && ticket.length <= 200) {
      return await redeemTicket(ticket) ?? null
    }
    return null
  }
  // A callback hook: a token seen before, of a user known to exist, is admitted with no promise.
  scope.addHook('onRequest', (request, _reply, done) => {
    const token = bearerToken(request.headers.authorization)
    const remembered = token ? authenticate.remembered?.(token) : undefined
    if (remembered) {
      done(admit(request, remembered))
      return
    }
    lookUp(request, token).then((principal) => done(admit(request, principal)), done)
  })
}
