import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, testDatabases, type TestApp } from '../helpers.js'
import { createWebhook, LOCAL_WEBHOOKS, startReceiver, verify, type Receiver } from './support.js'

describe.each(testDatabases)('webhook deliveries on $name', (target) => {
  let t: TestApp
  let receiver: Receiver
  beforeAll(async () => {
    receiver = await startReceiver()
    t = await buildTestApp(target, { env: LOCAL_WEBHOOKS })
    await t.app.ready()
  })
  afterAll(async () => {
    await t?.close()
    await receiver?.close()
  })

  it('signs a task create, as the standardwebhooks package verifies', async () => {
    const alice = await t.signUp()
    const hook = await createWebhook(t, alice, { url: receiver.url('/smoke'), events: ['*'] })
    const task = await t.createTask(alice, { title: 'Hello' })
    await receiver.until((r) => r.some((d) => d.path === '/smoke'))
    const [delivery] = receiver.on('/smoke')
    const payload = verify(hook.secret, delivery!)
    expect(payload).toMatchObject({ type: 'task.upsert', data: { type: 'task', op: 'upsert', task } })
  })
})
