// A reader of `text/event-stream` over a fetch response body, so that the stream can be opened with an
// Authorization header (EventSource cannot send one) in browsers and in Node alike. It follows the
// parsing rules of the HTML standard: https://html.spec.whatwg.org/multipage/server-sent-events.html

export interface ServerSentEvent {
  /** `message` when the event names no type. */
  type: string
  data: string
  /** The last id the stream has set, as EventSource's lastEventId: events without one keep it. */
  lastEventId: string
}

export interface EventStreamHandlers {
  onEvent: (event: ServerSentEvent) => void | Promise<void>
  /** The server's `retry:` field: how long to wait before reconnecting, in milliseconds. */
  onRetry?: (ms: number) => void
}

const LINE_END = /\r\n|\r|\n/

/** The parser's state between lines: the event being built, and the id that outlives it. */
class EventBuilder {
  lastEventId = ''
  private type = ''
  private data: string[] = []

  constructor (private readonly handlers: EventStreamHandlers) {}

  /** The event the blank line ends, if it has data (the standard drops data-less events). */
  take (): ServerSentEvent | undefined {
    const event = this.data.length === 0
      ? undefined
      : { type: this.type || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId }
    this.type = ''
    this.data = []
    return event
  }

  field (line: string): void {
    if (line.startsWith(':')) return // a comment: the server's heartbeat
    const colon = line.indexOf(':')
    const name = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (name === 'event') this.type = value
    else if (name === 'data') this.data.push(value)
    else if (name === 'id' && !value.includes('\0')) this.lastEventId = value
    else if (name === 'retry' && /^\d+$/.test(value)) this.handlers.onRetry?.(Number(value))
  }
}

/**
 * Reads `body` to its end, handing each event to `onEvent` and waiting for it before the next.
 * Rejects when the body fails (the connection dropped, or its request was aborted).
 */
export async function readEventStream (body: ReadableStream<Uint8Array>, handlers: EventStreamHandlers): Promise<void> {
  const reader = body.getReader()
  const decoder = new TextDecoder() // strips the byte-order mark the standard allows
  const builder = new EventBuilder(handlers)
  let pending = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      pending += done ? decoder.decode() : decoder.decode(value, { stream: true })
      // A chunk ending in \r may hold the first half of a \r\n: that \r waits to see what follows.
      const held = !done && pending.endsWith('\r')
      const lines = (held ? pending.slice(0, -1) : pending).split(LINE_END)
      pending = (lines.pop() ?? '') + (held ? '\r' : '')
      for (const line of lines) {
        if (line !== '') {
          builder.field(line)
          continue
        }
        const event = builder.take()
        if (event) await handlers.onEvent(event)
      }
      // At the end, an event that no blank line finished is dropped, as the standard says.
      if (done) return
    }
  } catch (error) {
    // Stopped early (a handler threw): cancelling lets the connection go instead of filling up.
    await reader.cancel(error).catch(() => {})
    throw error
  } finally {
    reader.releaseLock()
  }
}
