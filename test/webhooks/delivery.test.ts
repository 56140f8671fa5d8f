import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { asStream, get, json, portOf } from '../events/sse.js'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'
import { fromNow } from '../reminders/support.js'
import { createWebhook, LOCAL_WEBHOOKS, startReceiver, verify, type Receiver } from './support.js'

/**
 * Deliveries over real HTTP to a receiver on the loopback (WEBHOOKS_ALLOW_PRIVATE=true), verified
 * with the standardwebhooks package, on a retry schedule of 1s,1s,1s.
 */
describe.each(testDatabases)('webhook deliveries on $name', (target) => {
  let t: TestApp
  let receiver: Receiver
  /** Paths answered 500 until a test lets them succeed: path -> failures still to give (Infinity: always). */
  const failing = new Map<string, number>()
  beforeAll(async () => {
    receiver = await startReceiver(({ path }) => {
      const left = failing.get(path) ?? 0
      if (left <= 0) return 200
      failing.set(path, left - 1)
      return 500
    })
    t = await buildTestApp(target, { env: LOCAL_WEBHOOKS })
    await t.app.listen({ port: 0, host: '127.0.0.1' })
  })
  afterAll(async () => {
    await t?.close()
    await receiver?.close()
  })

  const sync = async (account: Account, since: string) =>
    (await t.inject({ url: `/api/v1/sync?since=${since}`, headers: account.headers })).json()

  it('signs every create, update and delete of tasks and projects, in write order, with /sync\'s data and a cursor just after it', async () => {
    const alice = await t.signUp()
    const hook = await createWebhook(t, alice, { url: receiver.url('/crud'), events: ['*'] })
    const h = alice.headers
    const project = (await t.inject({ method: 'POST', url: '/api/v1/projects', headers: h, payload: { name: 'Home' } })).json()
    const renamed = (await t.inject({ method: 'PATCH', url: `/api/v1/projects/${project.id}`, headers: h, payload: { name: 'House' } })).json()
    const task = await t.createTask(alice, { title: 'Paint', projectId: project.id })
    const done = (await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${task.id}`, headers: h, payload: { completed: true } })).json()
    const reopened = (await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${task.id}`, headers: h, payload: { completed: false } })).json()
    expect((await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${task.id}`, headers: h })).statusCode).toBe(204)
    expect((await t.inject({ method: 'DELETE', url: `/api/v1/projects/${project.id}`, headers: h })).statusCode).toBe(204)

    await receiver.until((r) => r.filter((d) => d.path === '/crud').length >= 7)
    const deliveries = receiver.on('/crud')
    expect(deliveries).toHaveLength(7)
    const bodies = deliveries.map((d) => verify(hook.secret, d))
    expect(bodies.map((b) => b.type)).toEqual(['project.upsert', 'project.upsert', 'task.upsert', 'task.upsert', 'task.upsert', 'task.delete', 'project.delete'])
    // Each transition as it was written (completed, then reopened, are two), as /sync shapes changes.
    expect(bodies[0].data).toEqual({ type: 'project', op: 'upsert', project })
    expect(bodies[1].data).toEqual({ type: 'project', op: 'upsert', project: renamed })
    expect(bodies[2].data).toEqual({ type: 'task', op: 'upsert', task })
    expect(bodies[3].data).toEqual({ type: 'task', op: 'upsert', task: done })
    expect(bodies[4].data).toEqual({ type: 'task', op: 'upsert', task: reopened })
    expect(bodies[5].data).toMatchObject({ type: 'task', op: 'delete', id: task.id, deletedAt: expect.any(String) })
    expect(bodies[6].data).toMatchObject({ type: 'project', op: 'delete', id: project.id })
    for (const b of bodies) expect(Object.keys(b).sort()).toEqual(['cursor', 'data', 'timestamp', 'type'])
    // The cursor is just after the change: /sync from the first gives the rest, from the last nothing.
    const fromFirst = await sync(alice, bodies[0].cursor)
    expect(fromFirst.changes.map((c: any) => `${c.type}.${c.op}`)).toEqual(['task.delete', 'project.delete'])
    expect((await sync(alice, bodies[6].cursor)).changes).toEqual([])
    const ids = deliveries.map((d) => d.headers['webhook-id'])
    expect(new Set(ids).size).toBe(7)
    for (const d of deliveries) {
      expect(Math.abs(Number(d.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60)
      expect(String(d.headers['webhook-signature'])).toMatch(/^v1,[A-Za-z0-9+/]+=*$/)
    }
  })

  it('signs a reminder\'s firing', async () => {
    const alice = await t.signUp()
    const hook = await createWebhook(t, alice, { url: receiver.url('/reminder'), events: ['reminder.fired'] })
    const task = await t.createTask(alice, { title: 'Call mum', reminders: [{ at: fromNow(1_000) }] })
    const [delivery] = await receiver.until((r) => r.some((d) => d.path === '/reminder'), 10_000).then(() => receiver.on('/reminder'))
    const body = verify(hook.secret, delivery!)
    expect(body).toMatchObject({
      type: 'reminder.fired',
      data: { type: 'reminder', op: 'fired', reminder: { taskId: task.id, reminderId: task.reminders[0].id, title: 'Call mum', firedAt: expect.any(String) } },
    })
    expect(receiver.on('/reminder')).toHaveLength(1) // the task's own create was not asked for
  })

  it('sends each endpoint only the events it lists, and only what happens after it was created', async () => {
    const alice = await t.signUp()
    const early = await t.createTask(alice, { title: 'Before any endpoint' })
    await createWebhook(t, alice, { url: receiver.url('/deletes'), events: ['task.delete'] })
    await createWebhook(t, alice, { url: receiver.url('/projects'), events: ['project.upsert', 'project.delete'] })
    const later = await t.createTask(alice, { title: 'After' })
    await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${early.id}`, headers: alice.headers })
    await t.inject({ method: 'POST', url: '/api/v1/projects', headers: alice.headers, payload: { name: 'P' } })
    await receiver.until((r) => r.some((d) => d.path === '/deletes') && r.some((d) => d.path === '/projects'))
    // A test event goes behind what is pending: once it arrives, nothing else is on the way.
    const hooks = (await t.inject({ url: '/api/v1/webhooks', headers: alice.headers })).json().items
    for (const hook of hooks) await t.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/test`, headers: alice.headers })
    await receiver.until((r) => r.filter((d) => d.json?.type === 'webhook.test' && ['/deletes', '/projects'].includes(d.path)).length === 2)
    expect(receiver.on('/deletes').map((d) => [d.json.type, d.json.data.id ?? null])).toEqual([['task.delete', early.id], ['webhook.test', null]])
    expect(receiver.on('/projects').map((d) => d.json.type)).toEqual(['project.upsert', 'webhook.test'])
    expect(receiver.received.some((d) => d.json?.data?.task?.id === later.id && d.path === '/deletes')).toBe(false)
  })

  it('retries a failing receiver on the schedule: 3 failures then success is 4 attempts of one webhook-id', async () => {
    const alice = await t.signUp()
    failing.set('/flaky', 3)
    const hook = await createWebhook(t, alice, { url: receiver.url('/flaky'), events: ['task.upsert'] })
    await t.createTask(alice, { title: 'Eventually' })
    await receiver.until((r) => r.filter((d) => d.path === '/flaky').length >= 4, 15_000)
    const attempts = receiver.on('/flaky')
    expect(attempts.map((d) => d.status)).toEqual([500, 500, 500, 200])
    expect(new Set(attempts.map((d) => d.headers['webhook-id'])).size).toBe(1)
    for (const d of attempts) verify(hook.secret, d)
    // About a second apart (the schedule), not at once.
    for (let i = 1; i < 4; i++) expect(attempts[i]!.at - attempts[i - 1]!.at).toBeGreaterThanOrEqual(900)
    const log = (await t.inject({ url: `/api/v1/webhooks/${hook.id}/deliveries?limit=3`, headers: alice.headers })).json()
    expect(log.items.map((d: any) => [d.attempt, d.status])).toEqual([[4, 200], [3, 500], [2, 500]])
    expect(log.items[1]).toMatchObject({ error: 'answered 500', type: 'task.upsert', eventId: attempts[0]!.headers['webhook-id'] })
    const older = (await t.inject({ url: `/api/v1/webhooks/${hook.id}/deliveries?cursor=${log.nextCursor}`, headers: alice.headers })).json()
    expect(older).toMatchObject({ items: [{ attempt: 1, status: 500 }], nextCursor: null })
    expect((await t.inject({ url: `/api/v1/webhooks/${hook.id}`, headers: alice.headers })).json().enabled).toBe(true)
  })

  it('disables an endpoint whose event runs out of retries, tells the open event streams, and resumes it on PATCH {enabled: true}', async () => {
    const alice = await t.signUp()
    failing.set('/down', Infinity)
    const hook = await createWebhook(t, alice, { url: receiver.url('/down'), events: ['task.upsert'] })
    const stream = asStream(await get(portOf(t.app), '/api/v1/events', alice.headers))
    await stream.nextEvents(0)
    await t.createTask(alice, { title: 'Nobody listens' })
    await receiver.until((r) => r.filter((d) => d.path === '/down').length >= 4, 15_000)
    const events = await stream.waitFor(() => stream.events.some((e) => e.event === 'webhook.disabled'), 5_000, 'webhook.disabled')
      .then(() => stream.events.filter((e) => e.event === 'webhook.disabled'))
    expect(events).toHaveLength(1)
    expect(events[0]!.id).toBeUndefined() // not a change: Last-Event-ID stays where it was
    expect(json(events[0]!)).toMatchObject({ id: hook.id, url: hook.url, reason: expect.stringContaining('failed 4 attempts') })
    const disabled = (await t.inject({ url: `/api/v1/webhooks/${hook.id}`, headers: alice.headers })).json()
    expect(disabled).toMatchObject({ enabled: false, disabledReason: expect.stringContaining('answered 500'), disabledAt: expect.any(String) })
    expect(receiver.on('/down')).toHaveLength(4) // 1 + the 3 retries, then nothing more
    const [owner] = await t.database.query<{ hooked: boolean }>({ name: 'hooked', text: 'select webhooks_enabled as hooked from users where id = $1' }, [alice.id])
    expect(owner!.hooked).toBe(false) // the write below is not even offered to the outbox
    // While disabled nothing is recorded; a test is refused.
    await t.createTask(alice, { title: 'Missed on purpose' })
    expectProblem(await t.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/test`, headers: alice.headers }), 409)
    failing.set('/down', 0)
    const enabled = await t.inject({ method: 'PATCH', url: `/api/v1/webhooks/${hook.id}`, headers: alice.headers, payload: { enabled: true } })
    expect(enabled.json()).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null })
    await t.createTask(alice, { title: 'Heard again' })
    await receiver.until((r) => r.filter((d) => d.path === '/down').length >= 5)
    expect(receiver.on('/down').slice(4).map((d) => d.json.data.task.title)).toEqual(['Heard again'])
  })

  it('signs with both secrets for 24 hours after a rotation, each verifying alone', async () => {
    const alice = await t.signUp()
    const hook = await createWebhook(t, alice, { url: receiver.url('/rotate'), events: ['task.upsert'] })
    const rotated = await t.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/rotate-secret`, headers: alice.headers })
    expect(rotated.statusCode).toBe(200)
    const { secret } = rotated.json()
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
    expect(secret).not.toBe(hook.secret)
    await t.createTask(alice, { title: 'Both' })
    await receiver.until((r) => r.some((d) => d.path === '/rotate'))
    const [both] = receiver.on('/rotate')
    const signatures = String(both!.headers['webhook-signature']).split(' ')
    expect(signatures).toHaveLength(2)
    // Each secret verifies on its own: the receiver may hold either one.
    expect(verify(hook.secret, both!).type).toBe('task.upsert')
    expect(verify(secret, both!).type).toBe('task.upsert')
    for (const s of [hook.secret, secret]) {
      expect(() => verify(s, { ...both!, headers: { ...both!.headers, 'webhook-signature': signatures[s === secret ? 1 : 0] } })).toThrow()
    }
    // 24 hours on, the old one no longer signs.
    await t.database.query({ name: 'expire_previous', text: "update webhooks set previous_secret_until = now() - interval '1 second' where id = $1" }, [hook.id])
    await t.createTask(alice, { title: 'New only' })
    await receiver.until((r) => r.filter((d) => d.path === '/rotate').length >= 2)
    const only = receiver.on('/rotate')[1]!
    expect(String(only.headers['webhook-signature']).split(' ')).toHaveLength(1)
    expect(verify(secret, only).data.task.title).toBe('New only')
    expect(() => verify(hook.secret, only)).toThrow()
  })

  it('sends a webhook.test on request, its webhook-id the answer\'s eventId', async () => {
    const alice = await t.signUp()
    const hook = await createWebhook(t, alice, { url: receiver.url('/test'), events: ['task.delete'] })
    const res = await t.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/test`, headers: alice.headers })
    expect(res.statusCode).toBe(202)
    await receiver.until((r) => r.some((d) => d.path === '/test'))
    const [delivery] = receiver.on('/test')
    expect(delivery!.headers['webhook-id']).toBe(res.json().eventId)
    expect(verify(hook.secret, delivery!)).toMatchObject({ type: 'webhook.test', data: { type: 'webhook', op: 'test', webhook: { id: hook.id } }, cursor: expect.any(String) })
  })

  it('keeps users apart: another user\'s writes never reach an endpoint, and another user\'s endpoint is a 404 everywhere', async () => {
    const alice = await t.signUp()
    const mallory = await t.signUp()
    const hook = await createWebhook(t, alice, { url: receiver.url('/alice'), events: ['*'] })
    await t.createTask(mallory, { title: 'Not for alice' })
    await t.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/test`, headers: alice.headers })
    await receiver.until((r) => r.some((d) => d.path === '/alice'))
    expect(receiver.on('/alice').map((d) => d.json.type)).toEqual(['webhook.test'])
    const base = `/api/v1/webhooks/${hook.id}`
    for (const [method, url, payload] of [['GET', base], ['PATCH', base, { enabled: false }], ['DELETE', base], ['POST', `${base}/rotate-secret`],
      ['POST', `${base}/test`], ['GET', `${base}/deliveries`]] as const) {
      expectProblem(await t.inject({ method, url, headers: mallory.headers, ...(payload && { payload }) }), 404)
    }
    expect((await t.inject({ url: '/api/v1/webhooks', headers: mallory.headers })).json().items).toEqual([])
    expect((await t.inject({ url: base, headers: alice.headers })).json()).toMatchObject({ id: hook.id, enabled: true, version: 1 })
  })
})
