import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

/** What a front-end developer reads first at /docs: how to get a token, and the rules of the road. */
const DESCRIPTION = `
A multi-user task API. No user can read or change another user's data: a task that is not yours is a 404.

## Getting a token (to try the API here)
1. **Register** (\`POST /api/v1/auth/register\`, the example is ready: press *Try it out*, then *Execute*) or **log in**.
2. Copy the \`accessToken\` from the answer, press **Authorize** above, paste the token alone (without \`Bearer \`) and close.
   Every request from this page now carries it, across reloads.
3. Access tokens last 15 minutes. Trade the \`refreshToken\` for a new pair at \`POST /api/v1/auth/refresh\`;
   each refresh token works once.

## Rules of the road
- **Errors** are \`application/problem+json\` (RFC 9457): \`{type, title, status, detail, errors?, instance}\`. \`errors\` names each wrong
  field (\`body.title\`); \`type\` is a stable URI for the cases a client branches on (see the \`Problem\` schema); \`instance\` is the
  request id to quote in a bug report.
- **Pagination** is by cursor: pass a page's \`nextCursor\` as \`cursor\`, with the same \`sort\`, until it is null. Pages hold at most
  4 MiB of JSON.
- **Concurrent edits**: GET gives an \`ETag\`; send it back as \`If-Match\` on PATCH or DELETE and a task changed meanwhile is a 412.
- **Retries**: an \`Idempotency-Key\` header on \`POST /api/v1/tasks\` makes a retried create return the first answer.
- **Rate limits**: \`RateLimit-Limit\`, \`RateLimit-Remaining\`, \`RateLimit-Reset\` on every answer under a limit; past it a 429 with \`Retry-After\`.
- **Methods**: a known path asked with a method it does not answer is a 405 with \`Allow\`.
- **Text** is stored exactly as sent: a NUL character (\`\\u0000\`) or a lone UTF-16 surrogate (\`\\ud800\` alone) anywhere in
  a body or a query is refused with a 400 naming the field, since PostgreSQL could not keep it as sent.
- **Times** are RFC 3339 with an offset (\`2026-12-01T17:00:00Z\`, \`...+01:00\`), in the years 0001-9999, without a leap
  second (\`23:59:60\` is refused); they are stored to the millisecond and sent back in UTC.
- **Keeping a local copy**: \`GET /api/v1/sync\` gives every change since a cursor (deletes included); \`GET /api/v1/events\` streams
  them live (Server-Sent Events; a browser trades its token for a ticket first).
- **Agents**: \`POST /mcp\` serves the same tasks as MCP tools (Model Context Protocol, Streamable HTTP, stateless), on the same
  tokens and limits; \`/.well-known/oauth-protected-resource/mcp\` tells an MCP client where tokens come from.
`.trim()

const TAGS = [
  { name: 'auth', description: 'Accounts and tokens' },
  { name: 'users', description: 'The signed-in user' },
  { name: 'tasks', description: 'Your tasks; another user\'s task is always 404' },
  { name: 'projects', description: 'Lists of tasks, in your order; another user\'s project is always 404' },
  { name: 'sync', description: 'Keeping a local copy: delta sync and live events' },
  { name: 'classic', description: 'The /api/{user_id}/tasks contract of existing todo front ends, over the same tasks' },
  { name: 'webhooks', description: 'Signed pushes of your changes and reminders to your servers (Standard Webhooks); another user\'s endpoint is always 404' },
  { name: 'agents', description: 'MCP (Model Context Protocol) for assistants: the same tasks, tokens and limits, as tools' },
  { name: 'operations', description: 'Health, metrics and documentation' },
]

type Json = Record<string, any>

const header = (description: string, schema: Json = { type: 'string' }) => ({ description, schema })

const HEADERS = {
  requestId: header('The request id: the client\'s own X-Request-Id when short and plain, else a new UUID; also the problem\'s `instance`'),
  rateLimitLimit: header('The limit closest to running out, in requests per window', { type: 'integer' }),
  rateLimitRemaining: header('Requests left in the window', { type: 'integer' }),
  rateLimitReset: header('Seconds until the window ends', { type: 'integer' }),
  retryAfter: header('Seconds to wait before retrying', { type: 'integer' }),
  wwwAuthenticate: header('Bearer: a valid access token is required'),
  allow: header('The methods the path answers'),
  etag: header('The version of the task, `"<version>-<id prefix>"`: send it as If-Match to write only if unchanged, as If-None-Match to get a 304'),
  location: header('The URL of the created task'),
  replayed: header('`true` when this is the stored answer to an earlier request with the same Idempotency-Key'),
}

/** What the main answer of each operation is. */
const SUCCESS: Record<string, string> = {
  register: 'The new account, signed in', login: 'Signed in', refreshSession: 'The session\'s next token pair',
  getMe: 'The signed-in user', updateMe: 'The user, changed',
  listTasks: 'A page of your tasks', createTask: 'The task, created (or, for a retried Idempotency-Key, the first answer)',
  getTask: 'The task', updateTask: 'The task, changed', syncChanges: 'A page of changes',
  createEventTicket: 'A ticket for GET /api/v1/events?ticket=', classicListTasks: 'Your tasks',
  classicCreateTask: 'The task, created', classicGetTask: 'The task', classicReplaceTask: 'The task, replaced',
  classicToggleTask: 'The task, its completion flipped', health: 'The process is up', readiness: 'The database answers',
  moveTask: 'The task, moved (its subtasks came with it)', listTaskCompletions: 'A page of the task\'s history',
  listTaskOccurrences: 'The next due dates', skipTaskOccurrence: 'The task, at its next occurrence', listProjects: 'A page of your projects', createProject: 'The project, created (last)',
  getProject: 'The project', updateProject: 'The project, changed', moveProject: 'The project, moved',
  listWebhooks: 'Your endpoints', createWebhook: 'The endpoint, created, with its secret (shown this once)', getWebhook: 'The endpoint',
  updateWebhook: 'The endpoint, changed', rotateWebhookSecret: 'The new secret (shown this once)', testWebhook: 'The test event, queued',
  listWebhookDeliveries: 'A page of delivery attempts',
  mcp: 'The JSON-RPC answer (a tool\'s refusal is a result with isError, not an HTTP error)', mcpResourceMetadata: 'The protected-resource document',
}

/** Response headers particular to an operation, beside those every answer carries. */
const OPERATION_HEADERS: Record<string, Record<string, Record<string, Json>>> = {
  createTask: { 201: { ETag: HEADERS.etag, Location: HEADERS.location, 'Idempotent-Replayed': HEADERS.replayed } },
  getTask: { 200: { ETag: HEADERS.etag }, 304: { ETag: HEADERS.etag } },
  updateTask: { 200: { ETag: HEADERS.etag } },
  moveTask: { 200: { ETag: HEADERS.etag } },
  skipTaskOccurrence: { 200: { ETag: HEADERS.etag } },
  createProject: { 201: { ETag: HEADERS.etag, Location: HEADERS.location, 'Idempotent-Replayed': HEADERS.replayed } },
  getProject: { 200: { ETag: HEADERS.etag }, 304: { ETag: HEADERS.etag } },
  updateProject: { 200: { ETag: HEADERS.etag } },
  moveProject: { 200: { ETag: HEADERS.etag } },
  createWebhook: { 201: { ETag: HEADERS.etag, Location: HEADERS.location } },
  getWebhook: { 200: { ETag: HEADERS.etag }, 304: { ETag: HEADERS.etag } },
  updateWebhook: { 200: { ETag: HEADERS.etag } },
  mcp: {
    401: {
      'WWW-Authenticate': header('`Bearer resource_metadata="<origin>/.well-known/oauth-protected-resource/mcp"`: where an MCP client learns how to get a token (RFC 9728)'),
    },
  },
}

/** Statuses that can answer any operation of a kind, with what they mean there. */
const BODY_PROBLEMS = {
  413: 'The body is larger than the server accepts (64 KiB by default)',
  415: 'The body is not application/json',
}
const DATABASE_DOWN = 'The database cannot be reached right now (type database-unavailable); retry after Retry-After'

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
})

/** Walks every schema under `node`, replacing each titled object schema with a $ref to its component. */
function nameSchemas (node: unknown, components: Json): unknown {
  if (Array.isArray(node)) return node.map((item) => nameSchemas(item, components))
  if (node === null || typeof node !== 'object') return node
  const object = node as Json
  const out: Json = {}
  for (const [key, value] of Object.entries(object)) out[key] = nameSchemas(value, components)
  const title = object.title
  const isObject = out.type === 'object' || (Array.isArray(out.type) && out.type.includes('object')) // nullable objects too
  if (typeof title === 'string' && (isObject || out.anyOf || out.oneOf)) {
    const { example, examples, ...schema } = out
    const existing = components[title]
    if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(schema)) {
      throw new Error(`two different schemas are both titled ${title}: name one differently (${JSON.stringify(existing)} / ${JSON.stringify(schema)})`)
    }
    components[title] = schema
    return { $ref: `#/components/schemas/${title}`, ...(example !== undefined && { example }), ...(examples !== undefined && { examples }) }
  }
  return out
}

/**
 * The document as clients should read it, from what the routes declare: named schemas in
 * components (a schema with a `title` is one), problems as application/problem+json, the headers
 * every answer carries, the statuses any operation of a kind can answer, public operations marked
 * `security: []`.
 */
export function shapeDocument (document: Json): Json {
  const components: Json = {}
  const paths = nameSchemas(document.paths, components) as Json
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(item as Json)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue
      const op = operation as Json
      const responses: Json = op.responses ?? {}
      const limited = op.security?.length > 0 || path.startsWith('/api/v1/auth/')
      if (op.requestBody) for (const [status, meaning] of Object.entries(BODY_PROBLEMS)) responses[status] ??= problemResponse(meaning)
      if (path !== '/healthz' && path !== '/metrics') responses[503] ??= problemResponse(DATABASE_DOWN)
      for (const [status, response] of Object.entries(responses) as Array<[string, Json]>) {
        const code = Number(status)
        if (response.description === 'Default Response' && SUCCESS[op.operationId]) response.description = SUCCESS[op.operationId]
        const headers: Json = { 'X-Request-Id': HEADERS.requestId, ...response.headers }
        if (code < 300 && limited) {
          Object.assign(headers, { 'RateLimit-Limit': HEADERS.rateLimitLimit, 'RateLimit-Remaining': HEADERS.rateLimitRemaining, 'RateLimit-Reset': HEADERS.rateLimitReset })
        }
        if (code === 429 || code === 503) headers['Retry-After'] = HEADERS.retryAfter
        if (code === 401) headers['WWW-Authenticate'] = HEADERS.wwwAuthenticate
        if (code === 405) headers.Allow = HEADERS.allow
        Object.assign(headers, OPERATION_HEADERS[op.operationId]?.[status])
        response.headers = headers
      }
      op.responses = responses
      op.security ??= []
    }
  }
  return {
    ...document,
    paths,
    components: { ...document.components, schemas: { ...document.components?.schemas, ...components } },
  }
}

/**
 * A token pasted into Authorize with its scheme ("Bearer ey...") would go out as "Bearer Bearer ey...":
 * the reference strips the doubled word. It runs in the browser, so it refers to nothing outside itself.
 */
function stripDoubledBearer (request: { headers: Record<string, string> }) {
  for (const name of ['Authorization', 'authorization']) {
    const value = request.headers[name]
    if (typeof value === 'string') request.headers[name] = value.replace(/^Bearer\s+Bearer\s+/i, 'Bearer ')
  }
  return request
}

/** The OpenAPI 3.1 document at /openapi.json and the interactive reference at /docs, titled "taskbase API". */
export async function registerOpenApi (app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'taskbase API', version: '1.0.0', description: DESCRIPTION },
      components: {
        // The order of the Authorize dialog: the access token first, where a new user pastes it.
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'The accessToken of register, login or refresh (15 minutes), or a token of the configured identity provider',
          },
          eventTicket: {
            type: 'apiKey',
            in: 'query',
            name: 'ticket',
            description: 'For GET /api/v1/events only: a single-use ticket from POST /api/v1/events/tickets (a browser\'s EventSource cannot send headers)',
          },
        },
      },
      tags: TAGS,
    },
    transformObject: (documentObject) => shapeDocument((documentObject as { openapiObject: Json }).openapiObject),
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    theme: { title: 'taskbase API' },
    uiConfig: { persistAuthorization: true, requestInterceptor: stripDoubledBearer as never, tryItOutEnabled: true },
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}
