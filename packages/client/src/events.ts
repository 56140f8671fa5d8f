import type { Client } from 'openapi-fetch'
import { problemOf, TaskbaseError } from './errors.js'
import type { paths } from './openapi.js'
import type { SessionKeeper } from './session.js'
import { readEventStream, type ServerSentEvent } from './sse.js'
import type { Change, Project, ReminderFired, ReminderMissed, Task } from './types.js'

export interface SubscribeOptions {
  /**
   * Where to start: an event's id, or the cursor of `sync.pull()` (the two are the same kind of
   * cursor, so pull first, then subscribe from its cursor, and no change falls between). Without it
   * the stream starts now.
   */
  since?: string
  /**
   * Each change, in order; the next waits for the promise it returns. `cursor` is the event's id:
   * persist it to resume from there. A throw stops the subscription (reported to `onError`) with
   * `lastEventId` still before that change, so nothing is skipped when you subscribe again.
   */
  onChange: (change: Change, cursor: string) => void | Promise<void>
  /**
   * Why the subscription stopped for good: the session ended (401), the cursor is too old (410,
   * `ProblemType.syncExpired`: pull from scratch), or `onChange` threw. Dropped connections and
   * server errors are not reported: they are retried. Without it, console.error.
   */
  onError?: (error: unknown) => void
  /** Milliseconds before reconnecting after a dropped connection; the server's `retry:` (2 s) otherwise. */
  retryMs?: number
}

export interface Subscription {
  /** The id of the last change handled: resume from it with `subscribe({ since })` or `sync.pull()`. */
  readonly lastEventId: string | undefined
  /** Stops for good; `onError` is not called. */
  close (): void
}

const DEFAULT_RETRY_MS = 2_000
/** Repeated failures to connect back off, doubling, to this. */
const MAX_RETRY_MS = 30_000

/** The change an event carries (the same shape as in a sync page); undefined for event types this client does not know (yet). */
function changeOf (event: ServerSentEvent): Change | undefined {
  switch (event.type) {
    case 'task.upsert': return { type: 'task', op: 'upsert', task: JSON.parse(event.data) as Task }
    case 'project.upsert': return { type: 'project', op: 'upsert', project: JSON.parse(event.data) as Project }
    case 'task.delete':
    case 'project.delete': {
      const { id, deletedAt } = JSON.parse(event.data) as { id: string, deletedAt: string }
      return { type: event.type === 'task.delete' ? 'task' : 'project', op: 'delete', id, deletedAt }
    }
    case 'reminder.fired': return { type: 'reminder', op: 'fired', reminder: JSON.parse(event.data) as ReminderFired }
    case 'reminder.missed': return { type: 'reminder', op: 'missed', reminder: JSON.parse(event.data) as ReminderMissed }
    default: return undefined
  }
}

/** A problem that retrying cannot fix; 408 and 429 can be, by waiting. */
const isFinal = (error: unknown) =>
  error instanceof TaskbaseError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429

const sessionEnded = (reason: string) => new TaskbaseError({
  status: 401,
  title: 'Unauthorized',
  detail: `The event stream ended (${reason}) and the session could not be renewed; sign in again`,
})

/** Resolves after `ms`, or at once when `signal` aborts. */
const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const wake = () => {
    clearTimeout(timer)
    signal.removeEventListener('abort', wake)
    resolve()
  }
  const timer = setTimeout(wake, ms)
  signal.addEventListener('abort', wake)
})

/**
 * GET /api/v1/events, kept open: on a `reauth` event it renews the session and reconnects at once,
 * after a dropped connection it waits and reconnects, each time with Last-Event-ID, so every change
 * is delivered once and in order.
 */
export function subscribe ({ api, keeper }: { api: Client<paths>, keeper: SessionKeeper }, options: SubscribeOptions): Subscription {
  const stopped = new AbortController()
  let lastEventId = options.since
  let retryMs = options.retryMs ?? DEFAULT_RETRY_MS
  /** Failures since the last stream that opened. */
  let failures = 0

  const stop = (error?: unknown) => {
    if (stopped.signal.aborted) return
    stopped.abort()
    if (error !== undefined) (options.onError ?? console.error)(error)
  }

  async function deliver (change: Change, cursor: string) {
    try {
      await options.onChange(change, cursor)
    } catch (error) {
      stop(error) // aborts the read below too
      throw error
    }
    lastEventId = cursor
  }

  /** One connection, read to its end: the reason of its `reauth` event if it sent one, and the token it was opened with. */
  async function connect (): Promise<{ reauth?: string, token?: string }> {
    const token = keeper.current?.accessToken
    const { data: body, error, response } = await api.GET('/api/v1/events', {
      params: { header: lastEventId === undefined ? undefined : { 'last-event-id': lastEventId } },
      headers: { accept: 'text/event-stream' },
      parseAs: 'stream',
      signal: stopped.signal,
    })
    if (!response.ok || !body) throw problemOf(response, error)
    failures = 0
    let reauth: string | undefined
    await readEventStream(body, {
      onRetry: (ms) => { if (options.retryMs === undefined) retryMs = ms },
      onEvent: async (event) => {
        if (event.type === 'reauth') {
          reauth = (JSON.parse(event.data) as { reason?: string }).reason ?? 'unknown'
          return
        }
        const change = changeOf(event)
        if (change) await deliver(change, event.lastEventId)
      },
    })
    return { reauth, token }
  }

  async function run () {
    while (!stopped.signal.aborted) {
      try {
        const { reauth, token } = await connect()
        if (reauth !== undefined) {
          // 'backlog': we read too slowly and the server let go; the token is fine.
          if (reauth !== 'backlog' && !(await keeper.renew(token))) return stop(sessionEnded(reauth))
          continue
        }
      } catch (error) {
        if (stopped.signal.aborted) return
        if (isFinal(error)) return stop(error)
        failures++
      }
      await sleep(Math.min(retryMs * 2 ** Math.max(0, failures - 1), MAX_RETRY_MS), stopped.signal)
    }
  }

  void run().catch(stop)
  return {
    get lastEventId () { return lastEventId },
    close: () => stop(),
  }
}
