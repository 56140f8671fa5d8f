import FindMyWay from 'find-my-way'
import type { FastifyInstance } from 'fastify'

/** Every method a route here can answer. */
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/**
 * Which methods each path answers, learnt from the routes as they are registered, so that a known
 * path asked with another method is a 405 with `Allow` (RFC 9110, section 15.5.6), not a 404.
 * Fastify's own router only answers "which handler for this method", hence a second, handler-less
 * table with the same matching rules.
 */
export interface RouteTableOptions {
  maxParamLength: number
  /** Path parameters a route's pattern matches but its handler refuses (a classic `user_id` of "v1"). */
  refuses?: (params: Record<string, string | undefined>) => boolean
}

export function routeTable (app: FastifyInstance, { maxParamLength, refuses = () => false }: RouteTableOptions) {
  const router = FindMyWay({ maxParamLength, defaultRoute: () => {} })
  app.addHook('onRoute', (route) => {
    // The CORS plugin's OPTIONS * answers preflights only; it does not make every path answer OPTIONS.
    if (route.url === '*') return
    for (const method of [route.method].flat()) {
      if ((METHODS as readonly string[]).includes(method) && !router.hasRoute(method as 'GET', route.url)) {
        router.on(method as 'GET', route.url, () => {})
      }
    }
  })
  return {
    /** The methods `path` (no query string) answers; empty for a path no route knows. */
    allowed (path: string): string[] {
      return METHODS.filter((method) => {
        const found = router.find(method, path)
        return found !== null && !refuses(found.params)
      })
    },
  }
}

export type RouteTable = ReturnType<typeof routeTable>
