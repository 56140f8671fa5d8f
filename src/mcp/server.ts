import type { FastifyBaseLogger } from 'fastify'
import type { TSchema } from 'typebox'
import type { CallToolResult, ListToolsResult } from '@modelcontextprotocol/sdk/types.js'
import { describeError, toProblem } from '../http/errors.js'
import { findUnstorableText } from '../http/input-guard.js'
import { badRequest, ProblemType, type FieldError, type Problem } from '../http/problem.js'
import { fieldErrors, validatorCompiler, type SchemaFailure } from '../http/validation.js'
import type { Tool } from './tools.js'

/** What an agent's client shows of the server, and reads before its first call. */
const SERVER_INFO = { name: 'taskbase', version: '1.0.0' }
const INSTRUCTIONS = 'The signed-in user\'s tasks and projects. Ids come from list_tasks and list_projects; times are RFC 3339 ' +
  '(UTC in answers). Pass a task\'s version to update, complete, move or delete it only if nobody changed it since you read it.'

/**
 * An input schema as tools/list publishes it, which every client puts in the model's context: the
 * rules (types, limits, enums, patterns, required arguments), without what is written for people
 * reading the OpenAPI document (titles, examples, descriptions); the tool's own hints instead. Left
 * out too, as guidance no model needs (a call past them is refused, naming the argument): the ban
 * on unknown arguments, and numeric bounds that only keep values storable (a version below 2^31, an
 * offset within a year). With reminders, tools/list came to 12.8 KB with them, against 12 KiB allowed.
 */
function publishedInput (schema: TSchema, hints: Record<string, string> = {}): Record<string, any> {
  const documentation = (key: string, value: unknown) => (key === 'examples' && Array.isArray(value)) ||
    (typeof value === 'string' && (key === 'title' || key === 'description'))
  const technical = (key: string, value: unknown) => key === 'additionalProperties' ||
    ((key === 'minimum' || key === 'maximum') && typeof value === 'number' && Math.abs(value) >= 100_000)
  const json = JSON.parse(JSON.stringify(schema, (key, value) => documentation(key, value) || technical(key, value) ? undefined : value))
  for (const [name, hint] of Object.entries(hints)) json.properties[name] = { ...json.properties[name], description: hint }
  return json
}

/**
 * An output schema as tools/list publishes it: the types of the resource's fields only. Every field
 * is always sent and the model reads the values, so the rest (required, formats, enums, the fields
 * of an object inside the resource, such as a task's recurrence or its reminders) told it nothing
 * and cost the budget: 13.1 KB of tools/list with them once tasks could recur, against 12 KiB
 * allowed. A page's list holds resources: their fields are listed.
 */
function publishedOutput (schema: TSchema, within: 'top' | 'resource' | 'page' = 'top'): Record<string, any> {
  const { type, properties, items } = schema as { type?: unknown, properties?: Record<string, TSchema>, items?: TSchema }
  const isObject = [type].flat().includes('object')
  if (isObject && properties !== undefined && within === 'top') {
    const kind = 'id' in properties ? 'resource' : 'page'
    return { type, properties: Object.fromEntries(Object.entries(properties).map(([name, field]) => [name, publishedOutput(field, kind)])) }
  }
  if (items !== undefined) return { type, items: within === 'resource' ? { type: (items as { type?: unknown }).type } : publishedOutput(items) }
  return { type }
}

/** The field a problem's path names, in the words of the tool's arguments (`body.projectId` is `projectId`). */
const argumentPath = (path: string) => path === 'body' ? 'arguments' : path.replace(/^(body|query|path)\./, '')

/** The field a refusal without `errors` is about. */
function impliedErrors (problem: Problem): FieldError[] {
  if (problem.type === ProblemType.preconditionFailed) return [{ path: 'version', message: 'is no longer the current version' }]
  if (problem.type === ProblemType.idempotencyKeyReused) return [{ path: 'idempotencyKey', message: 'was used before with other arguments' }]
  // Every other not-found names its field (a project, a parent, a sibling): this is the tool's own id.
  if (problem.status === 404) return [{ path: 'id', message: 'is not one of yours' }]
  return []
}

/**
 * A refused call as a tool result, never a protocol error: the model reads it and can correct
 * itself. The text carries the REST problem's detail and names each field, such as
 * `Refused (412 precondition-failed): The task has changed ... [version: is no longer the current version]`.
 */
export function refusal (problem: Problem): CallToolResult {
  const kind = problem.type === 'about:blank' ? '' : ` ${problem.type.split(':').at(-1)}`
  const fields = (problem.errors ?? impliedErrors(problem)).map(({ path, message }) => `${argumentPath(path)}: ${message}`)
  const text = `${problem.status < 500 ? 'Refused' : 'Failed'} (${problem.status}${kind}): ${problem.detail}` +
    (fields.length > 0 ? ` [${fields.join('; ')}]` : '')
  return { isError: true, content: [{ type: 'text', text }] }
}

export interface McpService {
  /** The tools/list result: built once, the same for every user. */
  readonly toolList: ListToolsResult
  /**
   * Answers one HTTP request of a client as `userId`, with a server and a transport of its own
   * (stateless: nothing is kept for the next request, which any process may answer).
   */
  handle (request: Request, body: unknown, userId: string, log: FastifyBaseLogger): Promise<Response>
}

/**
 * The SDK, loaded by the first MCP request rather than at start: its modules (zod and every schema of
 * the protocol among them, some 170 files) cost the start ~200 ms of CPU and ~20 MB that a server
 * nobody's agent calls never uses (issue 21).
 */
async function loadSdk () {
  // The low-level Server, not McpServer: McpServer takes zod schemas only, and would need a second
  // copy of the REST rules; this one publishes and applies the TypeBox schemas the routes use.
  const [{ Server }, { WebStandardStreamableHTTPServerTransport }, { CallToolRequestSchema, ListToolsRequestSchema }, { AjvJsonSchemaValidator }] =
    await Promise.all([
      import('@modelcontextprotocol/sdk/server/index.js'),
      import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'),
      import('@modelcontextprotocol/sdk/types.js'),
      import('@modelcontextprotocol/sdk/validation/ajv'),
    ])
  // Made once: the Server would otherwise build an Ajv instance per request (it is only used to
  // check what a client answers to server requests, which a stateless server never sends).
  const jsonSchemaValidator = new AjvJsonSchemaValidator()
  return { Server, WebStandardStreamableHTTPServerTransport, CallToolRequestSchema, ListToolsRequestSchema, jsonSchemaValidator }
}

export function mcpService (tools: Tool[]): McpService {
  const compile = validatorCompiler()
  // Arguments are JSON, typed as they are sent: validated like a request body (no coercion, no
  // unknown field), with the same messages. Compiled at a tool's first call: all nine at start cost
  // ~75 ms of CPU (issue 21).
  const validators = new Map<string, ReturnType<typeof compile>>()
  const validatorOf = (tool: Tool) => {
    let validate = validators.get(tool.name)
    if (validate === undefined) validators.set(tool.name, validate = compile({ schema: tool.input, httpPart: 'body' }))
    return validate
  }
  const byName = new Map(tools.map((tool) => [tool.name, tool]))
  const toolList: ListToolsResult = {
    tools: tools.map((tool) => ({
      name: tool.name,
      description: tool.description,
      inputSchema: publishedInput(tool.input, tool.hints) as ListToolsResult['tools'][number]['inputSchema'],
      outputSchema: publishedOutput(tool.output) as ListToolsResult['tools'][number]['outputSchema'],
      annotations: tool.annotations,
    })),
  }
  let sdk: ReturnType<typeof loadSdk> | undefined

  async function call (userId: string, name: string, given: Record<string, unknown> | undefined, log: FastifyBaseLogger): Promise<CallToolResult> {
    const tool = byName.get(name)
    if (!tool) {
      return refusal(badRequest(`There is no tool named ${name}`, [{ path: 'name', message: `must be one of: ${[...byName.keys()].join(', ')}` }]))
    }
    const args = given ?? {}
    const text = findUnstorableText(args, 'body')
    if (text) return refusal(badRequest('Text in the arguments cannot be stored as sent (a NUL character or a lone surrogate)', [text]))
    const validate = validatorOf(tool)
    if (!validate(args)) return refusal(badRequest('The arguments are not valid', fieldErrors('body', validate.errors as SchemaFailure[])))
    try {
      const result = await tool.run(userId, args)
      // The text is the same JSON, as the MCP specification advises for clients that do not read
      // structuredContent.
      return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result as Record<string, unknown> }
    } catch (error) {
      const problem = toProblem(error)
      if (problem.status === 503) log.warn(describeError(error), 'tool call: service unavailable')
      else if (problem.status >= 500) log.error(describeError(error), 'tool call failed')
      return refusal(problem)
    }
  }

  return {
    toolList,
    async handle (request, body, userId, log) {
      const { Server, WebStandardStreamableHTTPServerTransport, CallToolRequestSchema, ListToolsRequestSchema, jsonSchemaValidator } = await (sdk ??= loadSdk())
      const server = new Server(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS, jsonSchemaValidator })
      server.setRequestHandler(ListToolsRequestSchema, () => toolList)
      server.setRequestHandler(CallToolRequestSchema, ({ params }) => call(userId, params.name, params.arguments, log))
      const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
      await server.connect(transport)
      try {
        return await transport.handleRequest(request, { parsedBody: body })
      } finally {
        await server.close()
      }
    },
  }
}
