import { describe, expect, it } from 'vitest'
import { readEventStream, type ServerSentEvent } from '../../packages/client/src/sse.js'

/** A body that arrives in exactly these pieces, as a network may cut it. */
const bodyOf = (...chunks: Array<string | Uint8Array>) => new ReadableStream<Uint8Array>({
  start (controller) {
    for (const chunk of chunks) controller.enqueue(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk)
    controller.close()
  },
})

async function read (...chunks: Array<string | Uint8Array>) {
  const events: ServerSentEvent[] = []
  const retries: number[] = []
  await readEventStream(bodyOf(...chunks), { onEvent: (event) => { events.push(event) }, onRetry: (ms) => retries.push(ms) })
  return { events, retries }
}

describe('readEventStream', () => {
  it('reads the events the server sends, skipping comments, and its retry advice', async () => {
    const { events, retries } = await read(
      'retry: 2000\n: connected\n\n',
      'id: c1\nevent: task.upsert\ndata: {"id":"a"}\n\n',
      ': heartbeat\n\n',
      'event: reauth\ndata: {"reason":"expired"}\n\n',
    )
    expect(retries).toEqual([2000])
    expect(events).toEqual([
      { type: 'task.upsert', data: '{"id":"a"}', lastEventId: 'c1' },
      // No id of its own: it keeps the last one, as EventSource does.
      { type: 'reauth', data: '{"reason":"expired"}', lastEventId: 'c1' },
    ])
  })

  it('joins lines cut anywhere, a CRLF split between chunks included, and multi-line data', async () => {
    const { events } = await read('id: 7\r', '\nevent: task.del', 'ete\r\ndata: one\r', '\nda', 'ta:two\r', '\n\r', '\n')
    expect(events).toEqual([{ type: 'task.delete', data: 'one\ntwo', lastEventId: '7' }])
  })

  it('decodes a character split between chunks, and drops a byte-order mark', async () => {
    const bytes = new TextEncoder().encode('\uFEFFdata: caf\u00e9\n\n')
    const { events } = await read(bytes.slice(0, 13), bytes.slice(13))
    expect(events).toEqual([{ type: 'message', data: 'caf\u00e9', lastEventId: '' }])
  })

  it('drops an event with no data, and one the stream ended before finishing', async () => {
    const { events } = await read('id: 1\nevent: nothing\n\n', 'data: unfinished\n')
    expect(events).toEqual([])
  })
})
