import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'

/**
 * The request headers a front end sends: the token, JSON, conditional writes, retries, resuming a
 * stream; and an MCP client in a browser, the protocol version it agreed on.
 */
const ALLOWED_HEADERS = ['authorization', 'content-type', 'if-match', 'if-none-match', 'idempotency-key', 'last-event-id', 'x-request-id',
  'mcp-protocol-version']
/** The response headers a front end reads (an MCP client reads the 401's challenge for where to get a token). */
const EXPOSED_HEADERS = ['ETag', 'Location', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'X-Request-Id', 'Idempotent-Replayed',
  'WWW-Authenticate']

/** One or more host labels, as a browser serializes them in Origin (lower case, IDNs in punycode). */
const SUBDOMAIN = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/

/**
 * Whether a browser's Origin is on the list: an exact origin, or under a pattern such as
 * `https://*.example.com` (validated by loadConfig), which takes any subdomain at any depth with
 * the same scheme and port, and not the domain itself.
 */
export function originMatcher (origins: readonly string[]): (origin: string) => boolean {
  const exact = new Set(origins.filter((o) => !o.includes('*')))
  const patterns = origins.filter((o) => o.includes('://*.')).map((pattern) => {
    const [scheme, domainAndPort] = pattern.split('://*') as [string, string] // 'https', '.example.com:8443'
    return { prefix: `${scheme}://`, suffix: domainAndPort }
  })
  return (origin) => exact.has(origin) || patterns.some(({ prefix, suffix }) =>
    origin.startsWith(prefix) && origin.endsWith(suffix) &&
    SUBDOMAIN.test(origin.slice(prefix.length, origin.length - suffix.length)))
}

/**
 * Cross-origin calls from the listed origins (`*`: any). Tokens travel in the Authorization header,
 * never in cookies, so credentials mode is never allowed: there is no CSRF to defend against. Any
 * other origin gets no CORS header at all, and its browser refuses the answer. Nothing is registered
 * when the list is empty.
 */
export async function registerCors (app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return
  const any = origins.includes('*')
  const allowed = originMatcher(origins)
  await app.register(cors, {
    origin: (origin, callback) => {
      if (origin === undefined) callback(null, false) // not a cross-origin browser request
      else callback(null, any ? '*' : allowed(origin) ? origin : false)
    },
    credentials: false,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
    // An OPTIONS from an allowed origin is a preflight even without Access-Control-Request-Method,
    // rather than a plain-text 400.
    strictPreflight: false,
  })
}
