import { TaskbaseError } from './errors.js'
import type { Session, TokenPair } from './types.js'

/** What the client sends requests with: `globalThis.fetch`, or one the caller injects. */
export type Fetch = (request: Request) => Promise<Response>

export interface SessionKeeperOptions {
  /** Trades a refresh token for the next pair (POST /auth/refresh); rejects with TaskbaseError. */
  exchange: (refreshToken: string) => Promise<TokenPair>
  /** Told of every session the client takes on or drops by itself, to persist it. */
  onSession?: (session: Session | null) => void
}

export interface SessionKeeper {
  readonly current: Session | null
  set (session: Session | null, options?: { notify?: boolean }): void
  /**
   * Makes sure the session has an access token newer than `stale` (the one a request was refused
   * with). True when there is one to retry with; false when the session is gone (none, or the server
   * refused its refresh token: then it is dropped and `onSession(null)` told).
   */
  renew (stale: string | undefined): Promise<boolean>
}

export function sessionKeeper ({ exchange, onSession }: SessionKeeperOptions): SessionKeeper {
  let current: Session | null = null
  /**
   * The refresh in flight. Refresh tokens are single use: a second exchange of the same one would
   * revoke the whole session, so every caller that finds the token stale waits for this one.
   */
  let refreshing: Promise<boolean> | undefined

  const set = (session: Session | null, { notify = true } = {}) => {
    current = session
    if (notify) onSession?.(session)
  }

  async function refresh (from: Session): Promise<boolean> {
    let pair: TokenPair
    try {
      pair = await exchange(from.refreshToken)
    } catch (error) {
      // 401: the refresh token is spent, revoked or expired. Nothing will bring this session back.
      if (!(error instanceof TaskbaseError) || error.status !== 401) throw error
      if (current === from) set(null)
      return false
    }
    // Signed out, or handed another session, while the exchange ran: that one stands.
    if (current === from) set({ ...from, ...pair })
    return current !== null
  }

  return {
    get current () { return current },
    set,
    async renew (stale) {
      if (current === null) return false
      // Renewed already, by the call whose 401 came back first.
      if (current.accessToken !== stale) return true
      refreshing ??= refresh(current).finally(() => { refreshing = undefined })
      return refreshing
    },
  }
}

/**
 * `send`, with the session's access token on each request. A 401 renews the session (one refresh
 * however many requests were refused together) and sends the request again, once.
 */
export function authorizedFetch (send: Fetch, keeper: SessionKeeper): Fetch {
  const withToken = (request: Request, token: string | undefined) => {
    if (token !== undefined) request.headers.set('authorization', `Bearer ${token}`)
    return request
  }
  return async (request) => {
    // Taken before sending: a body, once sent, cannot be read again for the retry.
    const retry = request.clone()
    const token = keeper.current?.accessToken
    const response = await send(withToken(request, token))
    if (response.status !== 401 || !(await keeper.renew(token))) return response
    // Unread, the refused answer would hold its connection until collected.
    await response.body?.cancel()
    return send(withToken(retry, keeper.current?.accessToken))
  }
}
