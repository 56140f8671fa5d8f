/**
 * What travels on the one NOTIFY channel every process LISTENs to. Payloads start with the user's id,
 * so a process wakes only that user's streams: `<userId>:changed` (the user's change log grew; sent
 * after the write commits, see feed.ts), `<userId>:deleted` (the account is gone, sent by a trigger),
 * and the session notices below, sent in the transaction that revokes; and `jobs:<time>`, a wake-up
 * for the background jobs, which is no user's. `<userId>:<seq>` is what the
 * triggers sent before migration 0007, still understood.
 */
export const CHANGES_CHANNEL = 'taskbase_changes'

export const changedNotice = (userId: string) => `${userId}:changed`

/** A background job is due at `at` (ms since the epoch), maybe sooner than a process waits for (jobs/scheduler.ts). */
export const jobsNotice = (at: number) => `jobs:${Math.round(at)}`

/**
 * Sessions of the user ended: all of them (refresh-token reuse), only `only` (logout), or all but
 * `except` (a password change, made in the session that goes on).
 */
export function sessionsNotice (userId: string, { only, except }: { only?: string, except?: string } = {}): string {
  if (only !== undefined) return `${userId}:session:${only}`
  return except === undefined ? `${userId}:sessions` : `${userId}:sessions-except:${except}`
}

/** What a `webhook.disabled` event carries to the user's open streams. */
export interface WebhookDisabled { id: string, url: string, reason: string, disabledAt: string }

/**
 * The server disabled one of the user's webhook endpoints (its retries ran out): the user's open
 * streams get a `webhook.disabled` event. Not a change of the log: a stream opened later, and /sync,
 * do not see it; GET /api/v1/webhooks shows the endpoint disabled, with the reason.
 */
export const webhookDisabledNotice = (userId: string, disabled: WebhookDisabled) =>
  `${userId}:webhook-disabled:${Buffer.from(JSON.stringify(disabled)).toString('base64url')}`

/** The user has an enabled webhook endpoint (created, or enabled again): their writes wake the scheduler. */
export const webhooksNotice = (userId: string) => `${userId}:webhooks`

export type Notice =
  | { userId: string, kind: 'change' }
  | { userId: string, kind: 'deleted' }
  /** `sessionId`: only that session ended; `except`: every session but that one. Neither: all. */
  | { userId: string, kind: 'sessions', sessionId?: string, except?: string }
  /** No user's: a job is due at `at`. (A process from before it reads it as a change of a user "jobs", who has no streams.) */
  | { userId: 'jobs', kind: 'jobs', at: number }
  | { userId: string, kind: 'webhook-disabled', webhook: WebhookDisabled }
  | { userId: string, kind: 'webhooks' }

/** The notice of a payload, or undefined for one this version does not know (a newer process's). */
export function parseNotice (payload: string): Notice | undefined {
  const [userId, what, sessionId] = payload.split(':')
  if (!userId || what === undefined) return undefined
  if (userId === 'jobs') return /^[0-9]+$/.test(what) ? { userId, kind: 'jobs', at: Number(what) } : undefined
  if (what === 'deleted') return { userId, kind: 'deleted' }
  if (what === 'sessions') return { userId, kind: 'sessions' }
  if (what === 'session' && sessionId) return { userId, kind: 'sessions', sessionId }
  if (what === 'sessions-except' && sessionId) return { userId, kind: 'sessions', except: sessionId }
  if (what === 'changed' || /^[0-9]+$/.test(what)) return { userId, kind: 'change' }
  if (what === 'webhooks') return { userId, kind: 'webhooks' }
  if (what === 'webhook-disabled' && sessionId) {
    try {
      return { userId, kind: 'webhook-disabled', webhook: JSON.parse(Buffer.from(sessionId, 'base64url').toString('utf8')) as WebhookDisabled }
    } catch {
      return undefined
    }
  }
  return undefined
}
