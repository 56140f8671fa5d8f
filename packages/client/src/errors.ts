/** One invalid field of a refused request, such as `{ path: 'body.title', message: 'must not be blank' }`. */
export interface FieldError {
  path: string
  message: string
}

/**
 * The problem types a client branches on. The server promises never to rename them (they are part
 * of its contract, though not of /openapi.json, so they are repeated here; a test compares the two).
 */
export const ProblemType = {
  preconditionFailed: 'urn:problem-type:taskbase:precondition-failed',
  idempotencyKeyReused: 'urn:problem-type:taskbase:idempotency-key-reused',
  refreshTokenReused: 'urn:problem-type:taskbase:refresh-token-reused',
  databaseUnavailable: 'urn:problem-type:taskbase:database-unavailable',
  identityProviderUnavailable: 'urn:problem-type:taskbase:identity-provider-unavailable',
  rateLimited: 'urn:problem-type:taskbase:rate-limited',
  syncExpired: 'urn:problem-type:taskbase:sync-expired',
  taskLimitReached: 'urn:problem-type:taskbase:task-limit-reached',
  projectLimitReached: 'urn:problem-type:taskbase:project-limit-reached',
  tooDeep: 'urn:problem-type:taskbase:too-deep',
  cycle: 'urn:problem-type:taskbase:cycle',
  /** 409: the task does not repeat, or its series is over: there is no occurrence to skip. */
  notRepeating: 'urn:problem-type:taskbase:not-repeating',
  /** 401: the session ended (signed out, password changed, or a stolen refresh token detected): sign in again. */
  sessionEnded: 'urn:problem-type:taskbase:session-ended',
  /** 409: the account holds 10 webhook endpoints already. */
  webhookLimitReached: 'urn:problem-type:taskbase:webhook-limit-reached',
  /** 409: the webhook endpoint is disabled; enable it first. */
  webhookDisabled: 'urn:problem-type:taskbase:webhook-disabled',
} as const

/**
 * An error answer of the server (RFC 9457 problem+json), thrown by every client call. Branch on
 * `status`, or on `type` for the cases in {@link ProblemType}. A network failure is not one of
 * these: it rejects with fetch's own error.
 */
export class TaskbaseError extends Error {
  override readonly name = 'TaskbaseError'
  readonly status: number
  /** A URI naming the case; `about:blank` when the status says it all. */
  readonly type: string
  readonly title: string
  readonly detail: string
  /** The invalid fields of a 400 or 422; empty for other problems. */
  readonly errors: readonly FieldError[]
  /** The request id (the X-Request-Id header, and the server's log): quote it when reporting. */
  readonly instance: string | undefined

  constructor (problem: { status: number, type?: string, title: string, detail: string, errors?: FieldError[], instance?: string }) {
    super(problem.detail)
    this.status = problem.status
    this.type = problem.type ?? 'about:blank'
    this.title = problem.title
    this.detail = problem.detail
    this.errors = problem.errors ?? []
    this.instance = problem.instance
  }
}

const isProblemBody = (body: unknown): body is { type?: string, title?: string, detail?: string, errors?: FieldError[], instance?: string } =>
  typeof body === 'object' && body !== null && !Array.isArray(body)

/**
 * The error for a failed response, whose body openapi-fetch has already read (parsed JSON, or the
 * text when it was not JSON). Something between client and server (a proxy's 502 page) answers in
 * other shapes: the status and the text are kept.
 */
export function problemOf (response: Response, body: unknown): TaskbaseError {
  const title = response.statusText || `HTTP ${response.status}`
  if (isProblemBody(body)) {
    return new TaskbaseError({
      status: response.status,
      type: typeof body.type === 'string' ? body.type : undefined,
      title: typeof body.title === 'string' ? body.title : title,
      detail: typeof body.detail === 'string' ? body.detail : title,
      errors: Array.isArray(body.errors) ? body.errors : undefined,
      instance: typeof body.instance === 'string' ? body.instance : response.headers.get('x-request-id') ?? undefined,
    })
  }
  const text = typeof body === 'string' ? body.trim().slice(0, 500) : ''
  return new TaskbaseError({
    status: response.status, title, detail: text || title, instance: response.headers.get('x-request-id') ?? undefined,
  })
}

/** The data of an openapi-fetch call that succeeded; its error, as a TaskbaseError, otherwise. */
export async function dataOf<Data> (call: Promise<{ data?: Data, error?: unknown, response: Response }>): Promise<Data> {
  const { data, error, response } = await call
  if (!response.ok) throw problemOf(response, error)
  return data as Data
}
