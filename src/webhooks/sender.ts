import http from 'node:http'
import https from 'node:https'
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent'

/** Only a 2xx within this counts. */
export const ATTEMPT_TIMEOUT_MS = 15_000
/** A receiver's answer is read up to this, then the connection is dropped. */
export const MAX_RESPONSE_BYTES = 64 * 1024

export interface AttemptResult {
  /** The HTTP status, or null when there was none. */
  status: number | null
  /** Why the attempt failed; null for a 2xx. */
  error: string | null
  durationMs: number
}

export interface SenderOptions {
  /** WEBHOOKS_ALLOW_PRIVATE: private and loopback addresses, and http, allowed. */
  allowPrivate: boolean
  timeoutMs?: number
}

/**
 * POSTs deliveries over node:http(s), never fetch (which ignores agents). Without `allowPrivate`,
 * https only, and every connection's address is checked after DNS, as it is made
 * (request-filtering-agent): a name that resolves to a private, loopback, link-local or meta
 * address is refused, whatever it resolved to at creation. Redirects are not followed (a 3xx is a
 * failed attempt); an answer is read up to 64 KiB; the whole attempt is bounded by 15 s.
 */
export function webhookSender ({ allowPrivate, timeoutMs = ATTEMPT_TIMEOUT_MS }: SenderOptions) {
  const filter = { allowPrivateIPAddress: allowPrivate, allowMetaIPAddress: allowPrivate }
  const agents = {
    'http:': new RequestFilteringHttpAgent({ keepAlive: true, maxSockets: 8, ...filter }),
    'https:': new RequestFilteringHttpsAgent({ keepAlive: true, maxSockets: 8, ...filter }),
  }

  function send (target: string, headers: Record<string, string>, body: string, signal?: AbortSignal): Promise<AttemptResult> {
    const started = performance.now()
    const done = (status: number | null, error: string | null): AttemptResult =>
      ({ status, error, durationMs: Math.round(performance.now() - started) })
    let url: URL
    try {
      url = new URL(target)
    } catch {
      return Promise.resolve(done(null, 'the URL is not valid'))
    }
    if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
      return Promise.resolve(done(null, 'only https URLs are allowed'))
    }
    return new Promise<AttemptResult>((resolve) => {
      let settled = false
      const finish = (result: AttemptResult) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        resolve(result)
      }
      const request = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent: agents[url.protocol as 'http:' | 'https:'],
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'taskbase-webhooks/1' },
      }, (response) => {
        const status = response.statusCode ?? null
        let read = 0
        response.on('data', (chunk: Buffer) => {
          read += chunk.length
          // Enough of it: the status is what counts. The connection goes, not the attempt.
          if (read > MAX_RESPONSE_BYTES) {
            response.destroy()
            finish(outcome(status))
          }
        })
        response.on('end', () => finish(outcome(status)))
        response.on('error', () => finish(outcome(status)))
        response.on('aborted', () => finish(outcome(status)))
      })
      const outcome = (status: number | null): AttemptResult => status !== null && status >= 200 && status < 300
        ? done(status, null)
        : done(status, status !== null && status >= 300 && status < 400 ? `answered ${status}; redirects are not followed` : `answered ${status}`)
      const timer = setTimeout(() => {
        request.destroy()
        finish(done(null, `no answer within ${Math.round(timeoutMs / 1000)} s`))
      }, timeoutMs)
      const onAbort = () => {
        request.destroy()
        finish(done(null, 'the server shut down during the attempt'))
      }
      signal?.addEventListener('abort', onAbort)
      request.on('error', (error: NodeJS.ErrnoException) => finish(done(null, describe(error))))
      request.end(body)
    })
  }

  return {
    send,
    close (): void {
      agents['http:'].destroy()
      agents['https:'].destroy()
    },
  }
}

export type WebhookSender = ReturnType<typeof webhookSender>

/** A connection error as the deliveries list shows it. */
function describe (error: NodeJS.ErrnoException): string {
  // request-filtering-agent: "DNS lookup 127.0.0.1(family:4, host:localhost) is not allowed. Because, It is private IP address."
  if (/is not allowed/.test(error.message)) return `refused: ${error.message}`
  if (error.code === 'ECONNREFUSED') return 'connection refused'
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') return `host not found (${error.code})`
  if (error.code === 'ECONNRESET') return 'connection reset'
  return error.code ? `${error.code}: ${error.message}` : error.message
}
