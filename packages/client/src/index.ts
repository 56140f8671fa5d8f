// The typed client, `@taskbase/client` (`taskbase/client` inside the server's checkout). It runs in
// browsers as well as in Node 20, so it uses web APIs only (fetch, Request, URL, AbortController,
// TextDecoder, ReadableStream) and imports nothing of the server: its types come from the generated
// openapi.ts.
import createFetchClient, { type Client } from 'openapi-fetch'
import { dataOf } from './errors.js'
import { subscribe, type SubscribeOptions, type Subscription } from './events.js'
import type { paths } from './openapi.js'
import { projectMethods, type ProjectMethods } from './projects.js'
import { authorizedFetch, sessionKeeper, type Fetch } from './session.js'
import { syncMethods, type SyncMethods } from './sync.js'
import { taskMethods, type TaskMethods } from './tasks.js'
import type { LoginBody, RegisterBody, Session } from './types.js'

export { ProblemType, TaskbaseError, type FieldError } from './errors.js'
export type { SubscribeOptions, Subscription } from './events.js'
export type { components, paths } from './openapi.js'
export type { ProjectMethods } from './projects.js'
export type { Fetch } from './session.js'
export type { SyncMethods, SyncOptions } from './sync.js'
export { etagOf, type ConditionalOptions, type CreateOptions, type TaskMethods } from './tasks.js'
export type * from './types.js'

export interface ClientOptions {
  /** The server's origin, such as `https://tasks.example.com`. */
  baseUrl: string
  /** Sends every request; `globalThis.fetch` when omitted (wrap it to add logging, retries, test doubles). */
  fetch?: Fetch
  /** A session kept from before (storage, a server render); the same as calling `auth.setSession`. */
  session?: Session | null
  /**
   * Told of every session the client takes on or drops by itself (sign-in, each refresh, sign-out, a
   * refresh the server refused), to persist it. Not called for `auth.setSession`.
   */
  onSession?: (session: Session | null) => void
}

export interface AuthMethods {
  /** Creates an account and signs in with it. */
  register (body: RegisterBody): Promise<Session>
  login (body: LoginBody): Promise<Session>
  /** Ends the session on the server (its refresh tokens stop working) and drops it here, whatever the server answered. */
  logout (): Promise<void>
  /** Uses a session obtained elsewhere; null signs out here only. */
  setSession (session: Session | null): void
  readonly session: Session | null
}

export interface EventMethods {
  /** Live changes to the signed-in user's projects and tasks; see {@link SubscribeOptions}. */
  subscribe (options: SubscribeOptions): Subscription
}

export interface TaskbaseClient {
  auth: AuthMethods
  tasks: TaskMethods
  projects: ProjectMethods
  sync: SyncMethods
  events: EventMethods
  /**
   * The openapi-fetch client underneath, with the session's token and its refresh: every route of
   * /openapi.json, typed (`api.GET('/api/v1/users/me')`), answering `{ data, error, response }`.
   */
  api: Client<paths>
}

/**
 * A client of the taskbase server at `baseUrl`. Calls resolve to the response's data and reject
 * with a {@link TaskbaseError}. The session is kept inside: its access token goes on every request,
 * and a 401 refreshes it (once for any number of requests refused together) and retries.
 */
export function createClient ({ baseUrl, fetch, session = null, onSession }: ClientOptions): TaskbaseClient {
  // Looked up at each call, not captured: a page may install its fetch after this runs, and a
  // detached `window.fetch` throws "Illegal invocation".
  const send: Fetch = fetch ?? ((request) => globalThis.fetch(request))
  // Sign-in and refresh go out without a token, and a 401 there is an answer, not a cue to refresh.
  const open = createFetchClient<paths>({ baseUrl, fetch: send })
  const keeper = sessionKeeper({
    onSession,
    exchange: (refreshToken) => dataOf(open.POST('/api/v1/auth/refresh', { body: { refreshToken } })),
  })
  keeper.set(session, { notify: false })
  const api = createFetchClient<paths>({ baseUrl, fetch: authorizedFetch(send, keeper) })

  const signIn = async (pending: Promise<Session>) => {
    const signedIn = await pending
    keeper.set(signedIn)
    return signedIn
  }

  return {
    auth: {
      register: (body) => signIn(dataOf(open.POST('/api/v1/auth/register', { body }))),
      login: (body) => signIn(dataOf(open.POST('/api/v1/auth/login', { body }))),
      async logout () {
        const ending = keeper.current
        if (ending === null) return
        try {
          await dataOf(open.POST('/api/v1/auth/logout', { body: { refreshToken: ending.refreshToken } }))
        } finally {
          if (keeper.current === ending) keeper.set(null)
        }
      },
      setSession: (next) => keeper.set(next, { notify: false }),
      get session () { return keeper.current },
    },
    tasks: taskMethods(api),
    projects: projectMethods(api),
    sync: syncMethods(api),
    events: { subscribe: (options) => subscribe({ api, keeper }, options) },
    api,
  }
}
