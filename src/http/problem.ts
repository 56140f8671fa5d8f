import { STATUS_CODES } from 'node:http'
import { Type } from 'typebox'

export interface FieldError {
  path: string
  message: string
}

/**
 * Problem types clients branch on: URNs (RFC 8141), the same on every deployment, so a client compares
 * them as constants. They were https://taskbase.dev/problems/... until issue 16, a domain the project
 * does not hold; never renamed again.
 */
export const ProblemType = {
  preconditionFailed: 'urn:problem-type:taskbase:precondition-failed',
  idempotencyKeyReused: 'urn:problem-type:taskbase:idempotency-key-reused',
  refreshTokenReused: 'urn:problem-type:taskbase:refresh-token-reused',
  sessionEnded: 'urn:problem-type:taskbase:session-ended',
  databaseUnavailable: 'urn:problem-type:taskbase:database-unavailable',
  identityProviderUnavailable: 'urn:problem-type:taskbase:identity-provider-unavailable',
  rateLimited: 'urn:problem-type:taskbase:rate-limited',
  syncExpired: 'urn:problem-type:taskbase:sync-expired',
  taskLimitReached: 'urn:problem-type:taskbase:task-limit-reached',
  projectLimitReached: 'urn:problem-type:taskbase:project-limit-reached',
  tooDeep: 'urn:problem-type:taskbase:too-deep',
  cycle: 'urn:problem-type:taskbase:cycle',
  notRepeating: 'urn:problem-type:taskbase:not-repeating',
  webhookLimitReached: 'urn:problem-type:taskbase:webhook-limit-reached',
  webhookDisabled: 'urn:problem-type:taskbase:webhook-disabled',
} as const

/** What each type means, for the OpenAPI document: the code and the reference list the same problems. */
export const PROBLEM_TYPES: Record<keyof typeof ProblemType, string> = {
  preconditionFailed: '412: the ETag in If-Match is no longer current (another device changed it); fetch again and retry',
  idempotencyKeyReused: '422: this Idempotency-Key was used with a different body',
  refreshTokenReused: '401: a refresh token was presented twice; its session is revoked, sign in again',
  sessionEnded: '401: the refresh token\'s session has ended (signed out, password changed, or ended for a reused token); sign in again',
  databaseUnavailable: '503: the database cannot be reached right now; retry after Retry-After',
  identityProviderUnavailable: '503: the identity provider that signed the token cannot be reached to check it',
  rateLimited: '429: a rate limit (or the open-stream limit) is reached; retry after Retry-After',
  syncExpired: '410: the sync cursor is older than the change log keeps; sync again from the start',
  taskLimitReached: '409: the account holds TASKS_PER_USER_MAX tasks already',
  projectLimitReached: '409: the account holds PROJECTS_PER_USER_MAX projects already',
  tooDeep: '409: a task would be more than four levels deep (a top task, its subtask and two more levels)',
  cycle: '409: a task cannot be moved under itself or one of its own subtasks',
  notRepeating: '409: the task does not repeat, or its series is over: it has no occurrence to skip',
  webhookLimitReached: '409: the account holds 10 webhook endpoints already',
  webhookDisabled: '409: the webhook endpoint is disabled; PATCH {"enabled": true} first',
}

export interface ProblemOptions {
  /** A URI clients branch on (ProblemType); `about:blank` when the status says it all. */
  type?: string
  /** Which fields were wrong, as `body.title`, `query.limit`. */
  errors?: FieldError[]
  /** Headers the answer carries, such as Retry-After. */
  headers?: Record<string, string>
}

/** An RFC 9457 problem. Code below the routes throws these; one handler renders them (errors.ts). */
export class Problem extends Error {
  readonly type: string
  readonly errors: FieldError[] | undefined
  readonly headers: Record<string, string>

  constructor (readonly status: number, readonly detail: string, { type = 'about:blank', errors, headers = {} }: ProblemOptions = {}) {
    super(detail)
    this.type = type
    this.errors = errors
    this.headers = headers
  }

  toJSON () {
    const { type, status, detail, errors } = this
    return { type, title: STATUS_CODES[status] ?? 'Error', status, detail, ...(errors ? { errors } : {}) }
  }
}

// Every problem a client can meet, by name. A route documents the statuses it can answer with
// errorResponses() (schemas.ts); the types above are listed in the OpenAPI document's Problem.

export const badRequest = (detail: string, errors?: FieldError[]) => new Problem(400, detail, { errors })

const TOKEN_REQUIRED = 'A valid access token is required'

export const unauthorized = (detail = TOKEN_REQUIRED) => new Problem(401, detail, { headers: { 'www-authenticate': 'Bearer' } })

/** The guard's 401 with a challenge of the scope's own (MCP's names where a token comes from). */
export const tokenRequired = (challenge: string) => new Problem(401, TOKEN_REQUIRED, { headers: { 'www-authenticate': challenge } })

export const refreshTokenReused = () => new Problem(401,
  'This refresh token was already used; the session is revoked, sign in again',
  { type: ProblemType.refreshTokenReused, headers: { 'www-authenticate': 'Bearer' } })

export const sessionEnded = () => new Problem(401,
  'This session has ended (signed out, the password was changed, or a copy of its refresh token was used); sign in again',
  { type: ProblemType.sessionEnded, headers: { 'www-authenticate': 'Bearer' } })

export const forbidden = (detail: string) => new Problem(403, detail)

export const wrongPassword = () => forbidden('The password is incorrect')

export const notFound = (what: string) => new Problem(404, `${what} not found`)

/** A 404 for an id the request names in a field: another user's, or none. */
export const notFoundAt = (what: string, path: string) =>
  new Problem(404, `${what} not found`, { errors: [{ path, message: 'is not one of yours' }] })

export const routeNotFound = (method: string, path: string) => new Problem(404, `No route for ${method} ${path}`)

export const methodNotAllowed = (method: string, path: string, allowed: string[]) =>
  new Problem(405, `${method} is not allowed on ${path}; it allows ${allowed.join(', ')}`, { headers: { allow: allowed.join(', ') } })

export const emailTaken = () => new Problem(409, 'An account with this email already exists')

export const noPassword = () =>
  new Problem(409, 'This account signs in through an external identity provider and has no password here')

export const taskLimitReached = (max: number) => new Problem(409,
  `This account already holds ${max.toLocaleString('en-US')} tasks, the most this server allows (TASKS_PER_USER_MAX); delete some before creating more`,
  { type: ProblemType.taskLimitReached })

export const projectLimitReached = (max: number) => new Problem(409,
  `This account already holds ${max.toLocaleString('en-US')} projects, the most this server allows (PROJECTS_PER_USER_MAX); delete or merge some first`,
  { type: ProblemType.projectLimitReached })

export const tooDeep = () => new Problem(409,
  'Tasks nest at most four levels deep (a top task, its subtask and two more levels); this would go deeper',
  { type: ProblemType.tooDeep, errors: [{ path: 'body.parentId', message: 'is too deep for this task (and its subtasks) to go under' }] })

export const cycle = () => new Problem(409, 'A task cannot be moved under itself or one of its own subtasks',
  { type: ProblemType.cycle, errors: [{ path: 'body.parentId', message: 'is the task itself or one of its subtasks' }] })

export const notRepeating = () => new Problem(409,
  'The task does not repeat, or its series is over: there is no occurrence to skip',
  { type: ProblemType.notRepeating })

export const webhookLimitReached = (max: number) => new Problem(409,
  `This account already holds ${max} webhook endpoints, the most allowed; delete one before creating another`,
  { type: ProblemType.webhookLimitReached })

export const webhookDisabled = () => new Problem(409,
  'The webhook endpoint is disabled; enable it (PATCH {"enabled": true}) before sending it a test',
  { type: ProblemType.webhookDisabled })

export const syncExpired = () => new Problem(410,
  'This sync cursor is older than the change log keeps; sync again from the start, without since',
  { type: ProblemType.syncExpired })

export const preconditionFailed = (what: 'task' | 'project' | 'webhook') => new Problem(412,
  `The ${what} has changed since the ETag in If-Match was issued; fetch it again and retry`,
  { type: ProblemType.preconditionFailed })

export const idempotencyKeyReused = () => new Problem(422,
  'This Idempotency-Key was already used with a different body; use a new key for a new task',
  { type: ProblemType.idempotencyKeyReused })

/** A 429 whose Retry-After says when the window ends. */
export const rateLimited = (detail: string, { limit, secondsLeft }: { limit: number, secondsLeft: number }) =>
  new Problem(429, detail, {
    type: ProblemType.rateLimited,
    headers: {
      'retry-after': String(secondsLeft),
      'ratelimit-limit': String(limit),
      'ratelimit-remaining': '0',
      'ratelimit-reset': String(secondsLeft),
    },
  })

export const tooManyStreams = (max: number) => new Problem(429,
  `This account already has ${max} event streams open here; close one (or reuse it) before opening another`,
  { type: ProblemType.rateLimited, headers: { 'retry-after': '5' } })

export const internalError = () => new Problem(500, 'Something went wrong on our side; the request was not completed')

export const databaseUnavailable = (detail = 'The database is unavailable; retry shortly') =>
  new Problem(503, detail, { type: ProblemType.databaseUnavailable, headers: { 'retry-after': '2' } })

export const identityProviderUnavailable = () => new Problem(503,
  'The identity provider that signed this token cannot be reached to check it; retry shortly',
  { type: ProblemType.identityProviderUnavailable, headers: { 'retry-after': '5' } })

/** The schema of every error body, for the OpenAPI document. */
export const ProblemJson = Type.Object({
  type: Type.String({
    format: 'uri-reference',
    description: `about:blank, or one of the types clients branch on:\n${Object.entries(PROBLEM_TYPES)
      .map(([name, meaning]) => `- \`${ProblemType[name as keyof typeof ProblemType]}\`: ${meaning}`).join('\n')}`,
  }),
  title: Type.String({ description: 'The status code\'s reason phrase' }),
  status: Type.Integer(),
  detail: Type.String({ description: 'What went wrong, for a person' }),
  errors: Type.Optional(Type.Array(Type.Object({
    path: Type.String({ description: 'Where: body.title, query.limit, path.id, header.if-match' }),
    message: Type.String(),
  }), { description: 'For a 400 (422 on the classic routes): each field that was wrong' })),
  instance: Type.Optional(Type.String({ description: 'The request id, as in the X-Request-Id header and the server log' })),
}, { title: 'Problem', description: 'An RFC 9457 problem, sent as application/problem+json' })
