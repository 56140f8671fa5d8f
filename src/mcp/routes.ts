import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CountMore } from '../limits/rate-limit.js'
import { badRequest, type Problem } from '../http/problem.js'
import { errorResponses } from '../http/schemas.js'
import type { McpService } from './server.js'

/**
 * The protocol versions a client may initialize with, newest first: the SDK's
 * SUPPORTED_PROTOCOL_VERSIONS, written out so that the route's description needs no SDK at start
 * (server.ts loads it on the first request). test/mcp/http.test.ts keeps the two equal.
 */
export const PROTOCOL_VERSIONS: readonly string[] = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05', '2024-10-07']

const METADATA_PATH = '/.well-known/oauth-protected-resource/mcp'

/** `host` or `host:port`, a bracketed IPv6 address included; nothing that could break out of a quoted string. */
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/

/**
 * The origin the client reached: the Host header and the connection's scheme, or a trusted proxy's
 * X-Forwarded-Host and X-Forwarded-Proto (Fastify reads them only from the proxies TRUST_PROXY
 * names). Undefined for a host that is not a plain host name or address.
 */
export function originOf (request: FastifyRequest): string | undefined {
  const protocol = request.protocol.toLowerCase()
  const host = request.host
  if ((protocol !== 'http' && protocol !== 'https') || !HOST.test(host)) return undefined
  return `${protocol}://${host.toLowerCase()}`
}

/**
 * The 401's challenge: where the protected-resource document is, from which an MCP client learns
 * which authorization server issues tokens for /mcp (MCP authorization; RFC 9728, section 5.1).
 */
export function mcpChallenge (request: FastifyRequest): string {
  const origin = originOf(request)
  return origin === undefined ? 'Bearer' : `Bearer resource_metadata="${origin}${METADATA_PATH}"`
}

const ProtectedResourceJson = Type.Object({
  resource: Type.String({ format: 'uri', description: 'The MCP endpoint, as this client reaches it' }),
  authorization_servers: Type.Optional(Type.Array(Type.String({ format: 'uri' }), {
    description: 'The issuer of the configured identity provider (AUTH_ISSUER); absent when none is set',
  })),
  bearer_methods_supported: Type.Array(Type.String()),
  resource_name: Type.String(),
  resource_documentation: Type.String({ format: 'uri' }),
}, {
  title: 'ProtectedResourceMetadata',
  description: 'RFC 9728 protected resource metadata',
  examples: [{
    resource: 'https://tasks.example.com/mcp',
    authorization_servers: ['https://app.example.com'],
    bearer_methods_supported: ['header'],
    resource_name: 'taskbase',
    resource_documentation: 'https://tasks.example.com/docs',
  }],
})

export interface McpMetadataOptions {
  /** AUTH_ISSUER: the provider whose tokens taskbase accepts beside its own. */
  issuer: string | undefined
}

/** The protected-resource document (RFC 9728) of /mcp, public as the RFC has it. */
export const mcpMetadataRoutes: FastifyPluginAsyncTypebox<McpMetadataOptions> = async (app, { issuer }) => {
  app.get(METADATA_PATH, {
    schema: {
      tags: ['agents'],
      operationId: 'mcpResourceMetadata',
      summary: 'How an MCP client gets a token for /mcp (RFC 9728), without a token',
      response: { 200: ProtectedResourceJson, ...errorResponses([400, 'The Host header is not a host name or address']) },
    },
  }, async (request) => {
    const origin = originOf(request)
    if (origin === undefined) throw badRequest('The Host header is not a host name or address', [{ path: 'header.host', message: 'is not a host' }])
    return {
      resource: `${origin}/mcp`,
      ...(issuer !== undefined && { authorization_servers: [issuer] }),
      bearer_methods_supported: ['header'],
      resource_name: 'taskbase',
      resource_documentation: `${origin}/docs`,
    }
  })
}

const JsonRpcId = Type.Unsafe<string | number>({ type: ['string', 'integer'] })

const JsonRpcMessage = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: Type.Optional(JsonRpcId),
  method: Type.Optional(Type.String({ maxLength: 200 })),
  params: Type.Optional(Type.Object({})),
  result: Type.Optional(Type.Object({})),
  error: Type.Optional(Type.Object({})),
}, { title: 'JsonRpcMessage', description: 'A request (id and method), a notification (method alone) or a response' })

const JsonRpcResponse = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: JsonRpcId,
  result: Type.Optional(Type.Object({})),
  error: Type.Optional(Type.Object({ code: Type.Integer(), message: Type.String() })),
}, { title: 'JsonRpcResponse' })

/** JSON-RPC requests (not notifications) in a body: what a rate limit counts. */
function requestsIn (body: unknown): number {
  const messages = Array.isArray(body) ? body : [body]
  return messages.filter((m) => m !== null && typeof m === 'object' && 'method' in m && 'id' in m).length
}

/** What the transport reads of a request. Nothing else goes in: not the Authorization header, so no token reaches the SDK. */
function transportRequest (request: FastifyRequest): Request {
  const headers = new Headers({
    'content-type': 'application/json',
    // Answers are always JSON (enableJsonResponse), so a client that did not say it takes
    // text/event-stream too (curl, /docs) is answered rather than refused with a 406.
    accept: 'application/json, text/event-stream',
  })
  const version = request.headers['mcp-protocol-version']
  if (typeof version === 'string') headers.set('mcp-protocol-version', version)
  return new Request('http://taskbase.invalid/mcp', { method: 'POST', headers })
}

/** The transport refused the message itself (not JSON-RPC, an unknown protocol version): a problem like any other 400. */
async function transportRefusal (response: Response): Promise<Problem> {
  const { error } = await response.json().catch(() => ({})) as { error?: { message?: unknown } }
  const said = typeof error?.message === 'string' ? error.message : `HTTP ${response.status}`
  return badRequest(`The body is not an MCP message this server takes: ${said}`)
}

export interface McpRoutesOptions {
  service: McpService
  /** Counts the extra calls of a JSON-RPC batch against the API limit. */
  countMore: CountMore
}

/** POST /mcp: MCP over Streamable HTTP, stateless, in the scope that requires a token. */
export const mcpRoutes: FastifyPluginAsyncTypebox<McpRoutesOptions> = async (app, { service, countMore }) => {
  app.post('/mcp', {
    // Text a tool cannot store is refused by the tool, as a result the model reads (server.ts).
    config: { guardsOwnText: true },
    schema: {
      tags: ['agents'],
      operationId: 'mcp',
      summary: 'Model Context Protocol (Streamable HTTP, stateless): tools over your tasks and projects',
      description: `JSON-RPC 2.0 messages of MCP: \`initialize\`, \`tools/list\`, \`tools/call\` (see the README for the tools). Protocol versions ${PROTOCOL_VERSIONS.join(', ')}. ` +
        'No session: every request stands alone, and any server process answers it. Answers are JSON. GET and DELETE are 405 (no session stream, no session to end). ' +
        'Each request counts against the API rate limit, and each call of a batch. A 401 names the protected-resource document in WWW-Authenticate.',
      headers: Type.Object({
        'mcp-protocol-version': Type.Optional(Type.String({ description: 'The version initialize agreed on; one of those above' })),
      }),
      body: Type.Union([JsonRpcMessage, Type.Array(JsonRpcMessage, { minItems: 1, maxItems: 100 })], {
        title: 'McpMessage',
        examples: [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }],
      }),
      response: {
        200: Type.Union([JsonRpcResponse, Type.Array(JsonRpcResponse)], { title: 'McpAnswer', description: 'The JSON-RPC response(s)' }),
        202: Type.Null({ description: 'Notifications only: accepted, nothing to answer' }),
        ...errorResponses([400, 'Not an MCP message (not JSON-RPC 2.0, or an unsupported MCP-Protocol-Version)'], 401),
      },
    },
  }, async (request, reply) => {
    const more = requestsIn(request.body) - 1
    if (more > 0) {
      const refused = await countMore(request, reply, more)
      if (refused) throw refused
    }
    const response = await service.handle(transportRequest(request), request.body, request.userId, request.log)
    if (response.status >= 400) throw await transportRefusal(response)
    // The transport's JSON as it is: the route's response schema documents it, and re-serializing
    // through it would drop what the schema does not spell out.
    const raw = reply as FastifyReply
    if (response.status === 202) return raw.code(202).send()
    return raw.code(200).type('application/json; charset=utf-8').send(await response.text())
  })
}
