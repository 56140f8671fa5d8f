import { performance } from 'node:perf_hooks'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres, type Database } from '../../src/db/client.js'
import { asStream, get, json } from '../events/sse.js'
import { buildTestApp, testDatabases, type TestApp } from '../helpers.js'
import { agent, listening } from './support.js'

/**
 * Two taskbase processes behind one load balancer, on one database: a client's requests land on
 * either, in turn. Stateless MCP keeps nothing between them, so the client never notices. On the
 * postgres target each app has its own pool and its own LISTEN, as a second process would.
 */
describe.each(testDatabases)('MCP on two app instances on one $name database', (target) => {
  let a: TestApp
  let b: TestApp
  let second: Database | undefined
  const bases: string[] = []
  beforeAll(async () => {
    a = await buildTestApp(target)
    second = a.databaseUrl ? await openPostgres({ url: a.databaseUrl, poolSize: 5 }) : undefined
    b = await buildTestApp(target, { database: second ?? a.database })
    bases.push(await listening(a), await listening(b))
  })
  afterAll(async () => {
    await b.app.close()
    await second?.close()
    await a.close()
  })

  /** A load balancer taking turns: each POST goes to the other instance; `served` says which took it. */
  const roundRobin = () => {
    const served: string[] = []
    let turn = 0
    const fetch: FetchLike = (url, init) => {
      const to = new URL(url)
      const base = new URL(bases[turn++ % 2]!)
      to.host = base.host
      if (init?.method === 'POST') served.push(base.port)
      return globalThis.fetch(to, init)
    }
    return { fetch, served }
  }

  it('serves one client\'s alternate requests from either instance: initialize on one, calls on both, retries and versions across them', async () => {
    const alice = await a.signUp()
    const balancer = roundRobin()
    const agentOf = await agent(bases[0]!, alice.accessToken, { fetch: balancer.fetch })
    const created = await agentOf.ok('add_task', { title: 'Pay rent', idempotencyKey: 'rent-1' })
    expect(await agentOf.ok('add_task', { title: 'Pay rent', idempotencyKey: 'rent-1' })).toEqual(created)
    const updated = await agentOf.ok('update_task', { id: created.id, dueAt: '2026-12-01T09:00:00Z', version: 1 })
    expect(await agentOf.refused('complete_task', { id: created.id, version: 1 })).toMatch(/^Refused \(412 precondition-failed\)/)
    expect(await agentOf.ok('complete_task', { id: created.id, version: updated.version })).toMatchObject({ completed: true })
    const listed = await agentOf.ok('list_tasks')
    expect(listed.items.map((task: { id: string }) => task.id)).toEqual([created.id])
    // Both took POSTs of this one client, in turn.
    expect(new Set(balancer.served)).toEqual(new Set(bases.map((base) => new URL(base).port)))
    expect((await b.inject({ url: `/api/v1/tasks/${created.id}`, headers: alice.headers })).json()).toEqual(await agentOf.ok('get_task', { id: created.id }))
  })

  it('delivers a change made through one instance to an event stream open on the other within a second', async () => {
    const alice = await a.signUp()
    const stream = asStream(await get(Number(new URL(bases[1]!).port), '/api/v1/events', alice.headers))
    const onA = await agent(bases[0]!, alice.accessToken)
    const started = performance.now()
    const task = await onA.ok('add_task', { title: 'Seen on b' })
    const event = await stream.nextEvent(2_000)
    expect(event.at - started).toBeLessThan(1_000)
    expect(json(event)).toEqual(task)
  })
})
