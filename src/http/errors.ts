import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { badRequest, databaseUnavailable, internalError, methodNotAllowed, Problem, routeNotFound } from './problem.js'
import { METHODS, type RouteTable } from './routes-table.js'
import { fieldErrors, partName, type SchemaFailure } from './validation.js'

/**
 * Rendering every error as problem+json (RFC 9457): the problems code throws, schema failures,
 * Fastify's own 4xx, database errors; the cause of a 5xx is logged, never sent.
 */

interface FastifyLikeError {
  code?: string
  statusCode?: number
  message: string
  validation?: SchemaFailure[]
  validationContext?: string
}

interface ErrorLike { name?: string, code?: unknown, message?: unknown, severity?: unknown, query?: unknown, cause?: unknown }

/**
 * The error and its causes, outermost first: drizzle wraps the driver's error, which holds the
 * SQLSTATE. At most five deep, so a cause chain that loops cannot hang the error handler.
 */
function causeChain (error: unknown): ErrorLike[] {
  const chain: ErrorLike[] = []
  for (let e = error; e !== null && e !== undefined && chain.length < 5; e = (e as ErrorLike).cause) {
    chain.push(typeof e === 'object' ? e as ErrorLike : { message: String(e) })
    if (typeof e !== 'object') break
  }
  return chain
}

/** SQLSTATEs and socket errors that mean "the database is not there right now", not "bad query". */
export function isDatabaseUnavailable (error: unknown): boolean {
  for (const e of causeChain(error)) {
    const code = e.code
    if (typeof code === 'string') {
      if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true
      // Class 53 (too many connections, out of memory or disk), a statement cancelled by
      // statement_timeout (57014) and a lock not available in time (55P03): the server is overloaded
      // or blocked, not the request wrong; a retry later can succeed.
      if (code.startsWith('53') || code === '57014' || code === '55P03') return true
      if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) return true
    }
    const message = e.message
    if (typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|read connections are closed|waited too long for the database|PGlite is closed/i.test(message)) return true
  }
  return false
}

/** The SQLSTATE of a database error, wherever it sits in the cause chain. */
function databaseCode (error: unknown): string | undefined {
  for (const { code, severity } of causeChain(error)) {
    if (typeof code === 'string' && typeof severity === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code
  }
  return undefined
}

export function toProblem (error: unknown): Problem {
  if (error instanceof Problem) return error
  if (isDatabaseUnavailable(error)) {
    return databaseUnavailable()
  }
  const sqlState = databaseCode(error)
  if (sqlState?.startsWith('22')) {
    // Data exceptions (a value out of range, an invalid date): the input was wrong, not the server.
    // The schemas catch the known cases with the field named; this is the backstop.
    return badRequest('A value in the request is out of range or malformed')
  }
  const e = error as FastifyLikeError
  if (e?.validation) {
    const part = partName(e.validationContext)
    const errors = fieldErrors(e.validationContext, e.validation)
    const said = errors.map(({ path, message }) => `${path.slice(part.length + 1) || part} ${message}`).join('; ')
    return badRequest(`The request ${part} is not valid: ${said}`, errors)
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new Problem(e.statusCode, clientMessage(e))
  }
  return internalError()
}

/** Fastify's own 4xx messages, in words for an API client. */
function clientMessage (e: FastifyLikeError): string {
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return 'The body is not valid JSON'
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return 'The body is empty but Content-Type is application/json'
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'The body is larger than the limit of this server'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'Unsupported Content-Type; send application/json'
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return 'Content-Length does not match the body'
    case 'FST_ERR_BAD_URL': return 'The URL is not validly percent-encoded'
    case 'FST_ERR_MAX_PARAM_LENGTH': return 'A path segment is longer than this server accepts'
    default: return e.message
  }
}

/**
 * What a log may say about an error: the message and code of the error and its causes, never
 * query parameters (drizzle puts them in its message, and they hold password and token hashes).
 */
export function describeError (error: unknown): Record<string, unknown> {
  const chain = causeChain(error).map(({ name, code, message, query }) => ({
    name,
    code,
    message: typeof query === 'string' ? `Failed query: ${query}` : String(message),
  }))
  const stack = error instanceof Error && !('query' in error) ? error.stack : undefined
  return { errors: chain, stack }
}

/**
 * Renders every error as problem+json; the cause of a 5xx is logged, never sent.
 * `badInputStatus` replaces 400 (schema failures, malformed JSON) where a served contract says 422.
 */
export function problemErrorHandler (badInputStatus = 400) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    let problem = withAcceptedFields(toProblem(error), request)
    if (problem.status === 400 && badInputStatus !== 400) {
      problem = new Problem(badInputStatus, problem.detail, problem)
    }
    if (problem.status === 503) request.log.warn(describeError(error), 'service unavailable')
    else if (problem.status === 400 && databaseCode(error) !== undefined) request.log.warn(describeError(error), 'input refused by the database')
    else if (problem.status >= 500) request.log.error(describeError(error), 'request failed')
    return reply.code(problem.status).headers(problem.headers).type('application/problem+json').send(problemBody(problem, request))
  }
}

const UNKNOWN_FIELD = 'is not a known field'
const PARTS = { body: 'body', query: 'querystring' } as const

/** An unknown field's problem says which fields the route takes, so the fix is in the answer. */
function withAcceptedFields (problem: Problem, request: FastifyRequest): Problem {
  const unknown = problem.errors?.find((e) => e.message === UNKNOWN_FIELD)
  const part = unknown?.path.split('.')[0] as keyof typeof PARTS | undefined
  if (!unknown || part === undefined || !(part in PARTS)) return problem
  const schema = request.routeOptions.schema?.[PARTS[part]] as { properties?: Record<string, unknown> } | undefined
  const accepted = Object.keys(schema?.properties ?? {})
  if (accepted.length === 0) return problem
  const fields = problem.errors!.filter((e) => e.message === UNKNOWN_FIELD).map((e) => e.path.split('.').slice(1).join('.'))
  return new Problem(problem.status, `The request ${part} has ${fields.length === 1 ? 'a field' : 'fields'} this route does not accept ` +
    `(${fields.join(', ')}); it accepts: ${accepted.join(', ')}`, problem)
}

/**
 * The body of a problem answer. `instance` is the plain request id (RFC 9457 allows any URI
 * reference): the value of the X-Request-Id header and of `reqId` in the log, so a client's
 * report leads straight to the log lines.
 */
export function problemBody (problem: Problem, request: FastifyRequest) {
  return { ...problem.toJSON(), instance: request.id }
}

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses before there is a request
 * (headers over its 16 KiB limit, broken framing, a request that never finished arriving) gets
 * the same problem+json as everything else, not Fastify's plain JSON. Nothing of the request is
 * logged: its raw bytes hold the Authorization header.
 */
export function clientErrorHandler (this: FastifyInstance, error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, detail] = error.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'The request headers are larger than this server accepts']
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'The request did not arrive in time']
      : [400, 'The request is not valid HTTP/1.1']
  this.log.debug({ code: error.code, status }, 'malformed request refused')
  const body = JSON.stringify(new Problem(status, detail).toJSON())
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/** Fastify's `frameworkErrors`: a URL that does not decode (400), a path parameter over maxParamLength (414). */
export const frameworkErrors = problemErrorHandler()

/**
 * The answer for a request no route takes: 405 with `Allow` when the path is known under other
 * methods, 404 otherwise.
 */
export function noRoute (routes: RouteTable, request: FastifyRequest): Problem {
  const path = request.url.split('?')[0] ?? '/'
  const allowed = routes.allowed(path)
  if (allowed.length > 0) {
    return methodNotAllowed(request.method, path, allowed)
  }
  return routeNotFound(request.method, path)
}

const SERVED_METHODS = new Set<string>(METHODS)

export function registerProblemHandlers (app: FastifyInstance, routes: RouteTable): void {
  app.setErrorHandler(problemErrorHandler())
  // A method no route answers (QUERY, SEARCH, PROPFIND...) is a 405 with Allow (404 on an unknown
  // path) before its body is looked at: Fastify reads a QUERY's body first, and refused a bodiless
  // one with a 400 about its Content-Type.
  app.addHook('onRequest', (request, _reply, done) => {
    done(SERVED_METHODS.has(request.method) ? undefined : noRoute(routes, request))
  })
  app.setNotFoundHandler((request, reply) => {
    const problem = noRoute(routes, request)
    return reply.code(problem.status).headers(problem.headers).type('application/problem+json').send(problemBody(problem, request))
  })
}
