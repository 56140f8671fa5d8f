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

export type Notice =
  | { userId: string, kind: 'change' }
  | { userId: string, kind: 'deleted' }
  /** `sessionId`: only that session ended; `except`: every session but that one. Neither: all. */
  | { userId: string, kind: 'sessions', sessionId?: string, except?: string }
  /** No user's: a job is due at `at`. (A process from before it reads it as a change of a user "jobs", who has no streams.) */
  | { userId: 'jobs', kind: 'jobs', at: number }

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
  return undefined
}
