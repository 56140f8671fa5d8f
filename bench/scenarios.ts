/**
 * What the API benchmark sends. Every load generator (wrk through bench/wrk.lua, autocannon, the paced
 * client) builds its requests from these templates, so a scenario means the same thing whichever one runs.
 */

export type RequestKind = 'list' | 'read' | 'create' | 'complete'

export interface RequestTemplate {
  method: 'GET' | 'POST' | 'PATCH'
  /** `{id}` stands for one of the requesting user's own task ids. */
  path: string
  /** JSON; sent with content-type application/json. */
  body?: string
}

export const REQUESTS: Readonly<Record<RequestKind, RequestTemplate>> = {
  list: { method: 'GET', path: '/api/v1/tasks?limit=20' },
  read: { method: 'GET', path: '/api/v1/tasks/{id}' },
  create: { method: 'POST', path: '/api/v1/tasks', body: JSON.stringify({ title: 'Benchmark task', description: 'Created under load' }) },
  complete: { method: 'PATCH', path: '/api/v1/tasks/{id}', body: JSON.stringify({ completed: true }) },
}

export const SCENARIO_NAMES = ['list', 'read', 'create', 'mixed', 'paced'] as const
export type ScenarioName = typeof SCENARIO_NAMES[number]

export interface Scenario {
  name: ScenarioName
  /** Relative weights; each request draws its kind from them. */
  mix: Partial<Record<RequestKind, number>>
  /**
   * Think time after every answer, uniform in [min, max] milliseconds: each connection is a user who
   * reads before clicking again. Undefined for a closed loop (the next request leaves on the answer).
   */
  thinkMs?: { min: number, max: number }
}

const MIXED = { list: 40, read: 40, create: 10, complete: 10 }

export const SCENARIOS: Readonly<Record<ScenarioName, Scenario>> = {
  list: { name: 'list', mix: { list: 1 } },
  read: { name: 'read', mix: { read: 1 } },
  create: { name: 'create', mix: { create: 1 } },
  mixed: { name: 'mixed', mix: MIXED },
  // About 1,000 req/s offered by 1,000 users, whatever the server does: what "1,000 concurrent users" means.
  paced: { name: 'paced', mix: MIXED, thinkMs: { min: 500, max: 1_500 } },
}

/** A seeded account: its access token and the ids of its own tasks (requests never use another user's). */
export interface SeededUser { token: string, taskIds: string[] }

export function randomItem<T> (items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!
}

/** The path of `template` for `user`, with a random one of the user's task ids for `{id}`. */
export function resolvePath (template: RequestTemplate, user: SeededUser): string {
  return template.path.replace('{id}', () => randomItem(user.taskIds))
}

export interface HttpRequest { method: string, path: string, headers: Record<string, string>, body?: string }

/** A request of `kind` as `user`: a new object every time, so a client may add headers to it. */
export function requestFor (kind: RequestKind, user: SeededUser): HttpRequest {
  const template = REQUESTS[kind]
  return {
    method: template.method,
    path: resolvePath(template, user),
    headers: {
      authorization: `Bearer ${user.token}`,
      ...(template.body !== undefined && { 'content-type': 'application/json' }),
    },
    body: template.body,
  }
}

/** Draws request kinds with the scenario's weights. */
export function kindPicker ({ mix }: Scenario): () => RequestKind {
  const entries = Object.entries(mix) as Array<[RequestKind, number]>
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0)
  return () => {
    let ticket = Math.random() * total
    for (const [kind, weight] of entries) {
      ticket -= weight
      if (ticket < 0) return kind
    }
    return entries.at(-1)![0]
  }
}

/** A think time for one pause of `scenario`, in milliseconds; 0 for a closed loop. */
export function thinkTime ({ thinkMs }: Scenario): number {
  return thinkMs ? thinkMs.min + Math.random() * (thinkMs.max - thinkMs.min) : 0
}

export function meanThinkMs ({ thinkMs }: Scenario): number {
  return thinkMs ? (thinkMs.min + thinkMs.max) / 2 : 0
}
