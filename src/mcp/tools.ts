import { Type, type Static, type TProperties, type TSchema } from 'typebox'
import { badRequest, notFound } from '../http/problem.js'
import { Uuid } from '../http/schemas.js'
import type { ProjectQueries } from '../projects/queries.js'
import { CreateProjectBody, ListProjectsQuery, ProjectJson, ProjectPageJson } from '../projects/schemas.js'
import type { TaskQueries } from '../tasks/queries.js'
import { CreateTaskBody, ListTasksQuery, MoveTaskBody, TaskJson, TaskPageJson, UpdateTaskBody } from '../tasks/schemas.js'
import type { TaskTree } from '../tasks/tree.js'

/**
 * The MCP tools: an adapter over the functions the REST routes call, so a tool's write is in the
 * change log, the event streams and the caps exactly as a request's. The input schemas are built
 * from the REST schemas (same limits, same messages); each tool's `run` acts as `userId` only.
 */
export interface Tool {
  name: string
  /** One sentence: every client puts it in the model's context. */
  description: string
  /** What the arguments are validated against: the REST rules. */
  input: TSchema
  /** What the model is told of some arguments, in tools/list (the REST descriptions are written for people). */
  hints?: Record<string, string>
  /** The JSON of `structuredContent`, as REST answers it. */
  output: TSchema
  annotations: { readOnlyHint: boolean, destructiveHint: boolean, idempotentHint: boolean, openWorldHint: false }
  /** Validated arguments in, the structured result out; refusals are thrown as problems. */
  run (userId: string, args: unknown): Promise<object>
}

/** A tool whose `run` is typed by its input schema (the arguments it gets have passed it). */
const tool = <I extends TSchema>(spec: Omit<Tool, 'input' | 'run'> & { input: I, run (userId: string, args: Static<I>): Promise<object> }) =>
  spec as Tool

export interface ToolDeps {
  tasks: TaskQueries
  tree: TaskTree
  projects: ProjectQueries
}

/** If-Match for an agent: the integer `version` of the task's JSON (REST's ETag is `"<version>-<id prefix>"`). */
const Version = Type.Integer({ minimum: 1, maximum: 2_147_483_647 })
/** As POST /api/v1/tasks's Idempotency-Key header. */
const IdempotencyKey = Type.String({ minLength: 1, maxLength: 255 })

const VERSION = 'Only if the task is still at this version (from its JSON)'
const IDEMPOTENCY_KEY = 'Any unique string: a retry with the same key and arguments returns the first result, never a second one'
const CURSOR = 'nextCursor of the previous page'

const READ = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const
const WRITE = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false } as const

const object = <P extends TProperties>(properties: P) => Type.Object(properties, { additionalProperties: false })

/** The fields of `update_task` that change something, as PATCH takes them. */
const CHANGES = Object.keys(UpdateTaskBody.properties)

/** `version` as the queries take If-Match: a list of the versions allowed, or undefined for any. */
const ifVersions = (version: number | undefined) => version === undefined ? undefined : [version]

export function mcpTools ({ tasks, tree, projects }: ToolDeps): Tool[] {
  return [
    tool({
      name: 'list_tasks',
      description: 'List the user\'s tasks, filtered and sorted, one page at a time (pass nextCursor as cursor for the next).',
      input: ListTasksQuery,
      hints: {
        tag: 'Tasks having every one of these tags',
        q: 'Text in the title or description',
        sort: 'A leading - sorts descending; position is the user\'s own order',
        cursor: CURSOR,
        projectId: 'A project id (its tasks at every level), or inbox',
        parentId: 'A task id (its direct subtasks), or none (top level only)',
      },
      output: TaskPageJson,
      annotations: READ,
      run: (userId, args) => tasks.list(userId, args),
    }),
    tool({
      name: 'get_task',
      description: 'Get one task by id.',
      input: object({ id: Uuid }),
      output: TaskJson,
      annotations: READ,
      async run (userId, { id }) {
        const task = await tasks.find(userId, id)
        if (!task) throw notFound('task')
        return task
      },
    }),
    tool({
      name: 'add_task',
      description: 'Create a task, in the inbox unless projectId or parentId (a subtask) says otherwise.',
      input: object({ ...CreateTaskBody.properties, idempotencyKey: Type.Optional(IdempotencyKey) }),
      hints: {
        projectId: 'A project id; null or absent: the inbox',
        parentId: 'Makes it a subtask of this task, in that task\'s project',
        idempotencyKey: IDEMPOTENCY_KEY,
      },
      output: TaskJson,
      annotations: WRITE,
      async run (userId, { idempotencyKey, ...input }) {
        if (idempotencyKey === undefined) return tasks.create(userId, input)
        return (await tasks.createIdempotent(userId, idempotencyKey, input)).body
      },
    }),
    tool({
      name: 'update_task',
      description: 'Change some fields of a task; null clears description or dueAt.',
      input: object({ id: Uuid, ...UpdateTaskBody.properties, version: Type.Optional(Version) }),
      hints: { version: VERSION },
      output: TaskJson,
      annotations: { ...WRITE, idempotentHint: true },
      async run (userId, { id, version, ...changes }) {
        if (Object.keys(changes).length === 0) {
          throw badRequest('The arguments name nothing to change', [{ path: 'body', message: `must name at least one field to change: ${CHANGES.join(', ')}` }])
        }
        return tasks.update(userId, id, changes, ifVersions(version))
      },
    }),
    tool({
      name: 'complete_task',
      description: 'Mark a task done (with its open subtasks), or open again with completed false.',
      input: object({ id: Uuid, completed: Type.Optional(Type.Boolean({ default: true })), version: Type.Optional(Version) }),
      hints: { version: VERSION },
      output: TaskJson,
      annotations: { ...WRITE, idempotentHint: true },
      run: (userId, { id, completed, version }) => tasks.update(userId, id, { completed }, ifVersions(version)),
    }),
    tool({
      name: 'delete_task',
      description: 'Delete a task and its subtasks.',
      input: object({ id: Uuid, version: Type.Optional(Version) }),
      hints: { version: VERSION },
      output: object({ id: Uuid, deleted: Type.Literal(true) }),
      annotations: { ...WRITE, destructiveHint: true, idempotentHint: true },
      async run (userId, { id, version }) {
        await tasks.delete(userId, id, ifVersions(version))
        return { id, deleted: true }
      },
    }),
    tool({
      name: 'move_task',
      description: 'Move a task with its subtasks to another project, under another task, or between two siblings.',
      input: object({ id: Uuid, ...MoveTaskBody.properties, version: Type.Optional(Version) }),
      hints: {
        projectId: 'Another project (null: the inbox); the task goes to its top level unless parentId says otherwise',
        parentId: 'Under this task (null: top level)',
        beforeId: 'Lands just before this sibling',
        afterId: 'Lands just after this sibling; neither: last',
        version: VERSION,
      },
      output: TaskJson,
      annotations: WRITE,
      run: (userId, { id, version, ...to }) => tree.move(userId, id, to, ifVersions(version)),
    }),
    tool({
      name: 'list_projects',
      description: 'List the user\'s projects in their order (archived ones with archived true).',
      input: ListProjectsQuery,
      hints: { archived: 'true: the archived ones only', cursor: CURSOR },
      output: ProjectPageJson,
      annotations: READ,
      run: (userId, args) => projects.list(userId, args),
    }),
    tool({
      name: 'add_project',
      description: 'Create a project (a list of tasks), placed last.',
      input: object({ ...CreateProjectBody.properties, idempotencyKey: Type.Optional(IdempotencyKey) }),
      hints: { idempotencyKey: IDEMPOTENCY_KEY },
      output: ProjectJson,
      annotations: WRITE,
      async run (userId, { idempotencyKey, ...input }) {
        if (idempotencyKey === undefined) return projects.create(userId, input)
        return (await projects.createIdempotent(userId, idempotencyKey, input)).body
      },
    }),
  ]
}
