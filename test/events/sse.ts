import http, { type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, expect } from 'vitest'
import { expectProblem, type TestApp } from '../helpers.js'


// ---------------------------------------------------------------------------------------------
// A small text/event-stream client on node:http. Every wait is bounded; every stream opened is
// destroyed after each test (see `openStreams`).
// ---------------------------------------------------------------------------------------------

export interface SseEvent {
  id?: string
  event?: string
  data: string
  /** performance.now() when the event's terminating blank line arrived. */
  at: number
}

export interface SseResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The whole body of a non-200 answer. */
  body: string
  json (): any
}

export class SseStream {
  readonly events: SseEvent[] = []
  readonly comments: string[] = []
  ended = false
  /** Index of the first event not yet returned by nextEvents. */
  private read = 0
  private buffer = ''
  private pending: { id?: string, event?: string, data: string[] } = { data: [] }
  private readonly waiters = new Set<() => void>()

  constructor (private readonly request: http.ClientRequest, readonly response: http.IncomingMessage) {
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => this.feed(chunk))
    response.on('end', () => { this.ended = true; this.notify() })
    response.on('close', () => { this.ended = true; this.notify() })
    response.on('error', () => {})
  }

  private notify () { for (const w of this.waiters) w() }

  private feed (chunk: string) {
    this.buffer += chunk
    let newline: number
    while ((newline = this.buffer.search(/\r?\n/)) >= 0) {
      const line = this.buffer.slice(0, newline)
      this.buffer = this.buffer.slice(newline + (this.buffer[newline] === '\r' ? 2 : 1))
      if (line === '') {
        if (this.pending.data.length > 0 || this.pending.event !== undefined) {
          this.events.push({ id: this.pending.id, event: this.pending.event, data: this.pending.data.join('\n'), at: performance.now() })
        }
        this.pending = { data: [] }
      } else if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trim())
      } else {
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        let value = colon < 0 ? '' : line.slice(colon + 1)
        if (value.startsWith(' ')) value = value.slice(1)
        if (field === 'id') this.pending.id = value
        else if (field === 'event') this.pending.event = value
        else if (field === 'data') this.pending.data.push(value)
        // retry: and unknown fields are ignored
      }
    }
    this.notify()
  }

  /** Resolves once `ready()` is true; rejects after `ms` with `what`. */
  waitFor (ready: () => boolean, ms: number, what: string): Promise<void> {
    if (ready()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!ready()) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; events so far: ${JSON.stringify(this.events.map((e) => [e.event, e.data]))}`))
      }, ms)
      this.waiters.add(check)
    })
  }

  /** The next `n` events not yet returned, waiting at most `ms` for them. */
  async nextEvents (n: number, ms = 2_000): Promise<SseEvent[]> {
    await this.waitFor(() => this.events.length >= this.read + n, ms, `${n} event(s) after #${this.read}`)
    const out = this.events.slice(this.read, this.read + n)
    this.read += n
    return out
  }

  async nextEvent (ms = 2_000): Promise<SseEvent> {
    return (await this.nextEvents(1, ms))[0]!
  }

  /** Asserts that no event beyond those already returned arrives within `ms`. */
  async expectQuiet (ms: number): Promise<void> {
    await sleep(ms)
    expect(this.events.slice(this.read).map((e) => [e.event, e.data])).toEqual([])
  }

  waitEnd (ms: number): Promise<void> {
    return this.waitFor(() => this.ended, ms, 'the end of the stream')
  }

  get lastId (): string | undefined {
    return this.events.slice(0, this.read).at(-1)?.id
  }

  close () {
    this.request.destroy()
    this.response.destroy()
  }
}

const openStreams = new Set<{ destroy (): void }>()

/**
 * GET `path` over a real socket. A 200 gives the stream once its headers (and the first
 * bytes) arrived; any other status gives the whole answer.
 */
export function get (port: number, path: string, headers: Record<string, string> = {}, ms = 5_000): Promise<SseStream | SseResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers: { accept: 'text/event-stream', ...headers } })
    const handle = { destroy: () => request.destroy() }
    openStreams.add(handle)
    const timer = setTimeout(() => {
      request.destroy()
      reject(new Error(`GET ${path}: no response within ${ms} ms`))
    }, ms)
    request.on('error', (error) => { clearTimeout(timer); reject(error) })
    request.on('response', (response) => {
      if (response.statusCode === 200) {
        clearTimeout(timer)
        resolve(new SseStream(request, response))
        return
      }
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => {
        clearTimeout(timer)
        request.destroy()
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body, json: () => JSON.parse(body) })
      })
    })
    request.end()
  })
}

afterEach(() => {
  for (const handle of openStreams) handle.destroy()
  openStreams.clear()
})

export const portOf = (app: TestApp['app']) => (app.server.address() as AddressInfo).port

export const asStream = (res: SseStream | SseResponse): SseStream => {
  if (res instanceof SseStream) return res
  throw new Error(`expected an event stream, got ${res.status}: ${res.body}`)
}
export const asProblem = (res: SseStream | SseResponse, status: number): any => {
  if (res instanceof SseStream) {
    res.close()
    throw new Error(`expected ${status}, got an event stream`)
  }
  return expectProblem({ statusCode: res.status, headers: res.headers as Record<string, unknown>, json: res.json }, status)
}

export const json = (event: SseEvent) => JSON.parse(event.data)

/** What a client would note of an event: upsert id@version, or a tombstone. */
export const summary = (event: SseEvent) => {
  const data = json(event)
  return event.event === 'task.upsert' ? `upsert ${data.id}@${data.version}` : `${event.event} ${data.id}`
}

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
