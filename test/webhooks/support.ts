import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Webhook } from 'standardwebhooks'
import type { Account, TestApp } from '../helpers.js'

export interface Received {
  /** The receiver's path, such as /a: one receiver serves several endpoints. */
  path: string
  headers: IncomingHttpHeaders
  body: string
  json: any
  at: number
  /** The status it was answered with. */
  status: number
}

/**
 * A webhook receiver over real HTTP on the loopback. `answer` decides each request's status (200
 * unless it says otherwise; 'hang' never answers, until the receiver closes).
 */
export async function startReceiver (answer: (request: { path: string, count: number, headers: IncomingHttpHeaders }) => number | 'hang' = () => 200) {
  const received: Received[] = []
  const counts = new Map<string, number>()
  const hanging = new Set<() => void>()
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      const path = req.url ?? '/'
      const count = (counts.get(path) ?? 0) + 1
      counts.set(path, count)
      const status = answer({ path, count, headers: req.headers })
      let json: unknown
      try { json = JSON.parse(body) } catch { json = undefined }
      received.push({ path, headers: req.headers, body, json, at: Date.now(), status: status === 'hang' ? 0 : status })
      if (status === 'hang') {
        const end = () => res.destroy()
        hanging.add(end)
        return
      }
      res.writeHead(status, { 'content-type': 'text/plain' }).end('ok')
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    port,
    received,
    on: (path: string) => received.filter((r) => r.path === path),
    /** Waits (bounded) until `test` holds of what was received. */
    async until (test: (received: Received[]) => boolean, ms = 10_000, what = 'deliveries'): Promise<Received[]> {
      const deadline = Date.now() + ms
      while (!test(received)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${received.length}: ${received.map((r) => `${r.path} ${r.json?.type}`).join(', ')}`)
        await sleep(20)
      }
      return received
    },
    async close (): Promise<void> {
      for (const end of hanging) end()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>

/** Verifies a delivery with the standardwebhooks package; throws when it does not verify. */
export function verify (secret: string, delivery: Received): any {
  return new Webhook(secret).verify(delivery.body, {
    'webhook-id': String(delivery.headers['webhook-id']),
    'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
    'webhook-signature': String(delivery.headers['webhook-signature']),
  })
}

/** Creates an endpoint through the API; its JSON, with the secret. */
export async function createWebhook (t: TestApp, account: Account, payload: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await t.inject({ method: 'POST', url: '/api/v1/webhooks', headers: account.headers, payload })
  if (res.statusCode !== 201) throw new Error(`webhook create failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** Environment for a test app whose webhooks go to the loopback with a short retry schedule. */
export const LOCAL_WEBHOOKS = { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOKS_RETRY_SCHEDULE: '1s,1s,1s' }
