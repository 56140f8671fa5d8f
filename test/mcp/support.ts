import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import { afterEach } from 'vitest'
import type { TestApp } from '../helpers.js'

/** Starts `t` on a real port of 127.0.0.1; its base URL. */
export async function listening (t: TestApp): Promise<string> {
  await t.app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
}

/** An agent's connection: the SDK's own client, over HTTP, with a bearer token. */
export interface Agent {
  client: Client
  /** The raw result of a tool call. */
  call (name: string, args?: Record<string, unknown>): Promise<CallToolResult>
  /** The structured result of a call that must succeed (it fails the test otherwise). */
  ok (name: string, args?: Record<string, unknown>): Promise<Record<string, any>>
  /** The text of a call that must be refused with isError (it fails the test otherwise). */
  refused (name: string, args?: Record<string, unknown>): Promise<string>
}

const open = new Set<Client>()

afterEach(async () => {
  await Promise.all([...open].map((client) => client.close()))
  open.clear()
})

const textOf = (result: CallToolResult) => result.content.map((c) => c.type === 'text' ? c.text : '').join('')

/**
 * Connects as the holder of `token` and lists the tools, so that the client checks every
 * structured result against its tool's output schema from then on. Closed after each test.
 */
export async function agent (base: string, token: string, { fetch }: { fetch?: FetchLike } = {}): Promise<Agent> {
  const client = new Client({ name: 'taskbase-test-agent', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', base), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
    ...(fetch && { fetch }),
  })
  await client.connect(transport)
  open.add(client)
  await client.listTools()
  const call = async (name: string, args: Record<string, unknown> = {}) => await client.callTool({ name, arguments: args }) as CallToolResult
  return {
    client,
    call,
    async ok (name, args) {
      const result = await call(name, args)
      if (result.isError) throw new Error(`${name} was refused: ${textOf(result)}`)
      // The text is the same JSON, for clients that do not read structuredContent.
      if (JSON.stringify(JSON.parse(textOf(result))) !== JSON.stringify(result.structuredContent)) {
        throw new Error(`${name}: the text is not the structured content: ${textOf(result)}`)
      }
      return result.structuredContent as Record<string, any>
    },
    async refused (name, args) {
      const result = await call(name, args)
      if (!result.isError) throw new Error(`${name} was not refused: ${textOf(result)}`)
      if (result.structuredContent !== undefined) throw new Error(`${name}: a refusal carries no structured content`)
      return textOf(result)
    },
  }
}

/** One JSON-RPC POST to /mcp by hand, as a client of any SDK (or none) sends it. */
export async function rpc (base: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, headers: Headers, text: string, json (): any }> {
  const res = await fetch(new URL('/mcp', base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) }
}
