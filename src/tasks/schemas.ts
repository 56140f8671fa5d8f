import { Type, type Static } from 'typebox'
import { DateTime, Nullable, StringEnum, Uuid } from '../http/schemas.js'
import { RECURRENCE_EXAMPLE, RecurrenceBody, RecurrenceJson } from '../recurrence/schemas.js'
import { ReminderJson, RemindersBody } from '../reminders/schemas.js'

export const Priority = StringEnum(['none', 'low', 'medium', 'high'])
const Title = Type.String({ minLength: 1, maxLength: 500, pattern: '\\S', description: 'Trimmed; not blank' })
const Description = Nullable(Type.String({ maxLength: 10_000 }))
const DueAt = Nullable(DateTime({ description: 'RFC 3339 with a time zone' }))
const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 50, pattern: '\\S' }), {
  maxItems: 20,
  description: 'Trimmed; duplicates (ignoring case) are dropped, the first spelling kept',
})

const ProjectRef = Nullable(Type.String({ format: 'uuid', description: 'A project of yours; null: the inbox' }))
const ParentRef = Nullable(Type.String({ format: 'uuid', description: 'A task of yours to go under; null: top level' }))

export const CreateTaskBody = Type.Object({
  title: Title,
  description: Type.Optional(Description),
  priority: Type.Optional(Priority),
  dueAt: Type.Optional(DueAt),
  tags: Type.Optional(Tags),
  projectId: Type.Optional(ProjectRef),
  parentId: Type.Optional(Type.String({ format: 'uuid', description: 'Create it as a subtask of this task (in that task\'s project), last among its subtasks' })),
  recurrence: Type.Optional(RecurrenceBody),
  reminders: Type.Optional(RemindersBody),
}, {
  additionalProperties: false,
  title: 'NewTask',
  // Every last Friday of the month at 09:00 Berlin time, from 25 December 2026.
  examples: [{ title: 'Write the report', description: 'Monthly numbers for the board', priority: 'high', dueAt: '2026-12-25T08:00:00Z', tags: ['work'],
    recurrence: { rule: 'FREQ=MONTHLY;BYDAY=-1FR', timezone: 'Europe/Berlin' }, reminders: [{ offsetMinutes: -30 }] }],
})
export type CreateTaskBody = Static<typeof CreateTaskBody>

export const UpdateTaskBody = Type.Object({
  title: Type.Optional(Title),
  description: Type.Optional(Description),
  completed: Type.Optional(Type.Boolean()),
  priority: Type.Optional(Priority),
  dueAt: Type.Optional(DueAt),
  tags: Type.Optional(Tags),
  recurrence: Type.Optional(RecurrenceBody),
  reminders: Type.Optional(RemindersBody),
}, {
  additionalProperties: false,
  minProperties: 1,
  title: 'TaskChanges',
  description: 'completed: true on a recurring task completes its current occurrence: dueAt moves to the next one and the task stays open ' +
    '(once COUNT or UNTIL is used up, it completes for good). Such a request cannot also change dueAt',
  examples: [{ completed: true }],
})
export type UpdateTaskBody = Static<typeof UpdateTaskBody>

export const TaskParams = Type.Object({ id: Uuid })

export const MoveTaskBody = Type.Object({
  projectId: Type.Optional(ProjectRef),
  parentId: Type.Optional(ParentRef),
  beforeId: Type.Optional(Type.String({ format: 'uuid', description: 'The sibling it lands just before' })),
  afterId: Type.Optional(Type.String({ format: 'uuid', description: 'The sibling it lands just after' })),
}, {
  additionalProperties: false,
  title: 'TaskMove',
  description: 'Where to put the task, with its whole subtree. An omitted projectId stays as it is (a parentId puts the task in ' +
    'the parent\'s project); an omitted parentId stays as it is (moving to another project makes the task top level there). ' +
    'beforeId / afterId: the sibling it lands just before / just after (one, or both when adjacent); neither: last among its new siblings.',
  examples: [{}],
})
export type MoveTaskBody = Static<typeof MoveTaskBody>

export const SORTS = ['createdAt', '-createdAt', 'dueAt', '-dueAt', 'priority', '-priority', 'title', '-title', 'position'] as const
export type Sort = (typeof SORTS)[number]

export const ListTasksQuery = Type.Object({
  completed: Type.Optional(Type.Boolean()),
  priority: Type.Optional(Priority),
  tag: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 50 }), {
    maxItems: 20, description: 'Repeatable; a task must have every tag given (ignoring case)',
  })),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Case-insensitive substring of the title or of the description; % and _ are literal' })),
  dueBefore: Type.Optional(DateTime({ description: 'Tasks due strictly before' })),
  dueAfter: Type.Optional(DateTime({ description: 'Tasks due strictly after' })),
  sort: Type.Optional(StringEnum(SORTS, {
    default: '-createdAt',
    description: 'A leading - sorts descending; ties are broken by id; tasks with no due date come last. position: the order you gave ' +
      '(with projectId and parentId, the order of one list)',
  })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  // The longest cursor we hand out holds a 500-character title of control characters, each six bytes
  // of JSON (\u0001): about 4,070 characters of base64url. Every cursor we give must come back.
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'nextCursor of the previous page' })),
  projectId: Type.Optional(Type.String({
    pattern: '^(inbox|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$',
    description: 'A project\'s id, or inbox: the tasks at every level of that project (or of no project)',
  })),
  recurring: Type.Optional(Type.Boolean({ description: 'true: only tasks that repeat; false: only tasks that do not' })),
  parentId: Type.Optional(Type.String({
    pattern: '^(none|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$',
    description: 'A task\'s id: its direct subtasks; none: top-level tasks only',
  })),
}, { additionalProperties: false })
export type ListTasksQuery = Static<typeof ListTasksQuery>

const TASK_EXAMPLE = {
    id: '0b9a7c64-5b0f-4f7e-9a3e-4f1f2a8e6d11',
    title: 'Write the report',
    description: 'Monthly numbers for the board',
    completed: false,
    completedAt: null,
    priority: 'high',
    dueAt: '2026-12-25T08:00:00.000Z',
    tags: ['work'],
    createdAt: '2026-11-20T09:30:00.000Z',
    updatedAt: '2026-11-20T09:30:00.000Z',
    version: 1,
    projectId: '7c1e4a2b-3d5f-4e6a-8b9c-0d1e2f3a4b5c',
    parentId: null,
    position: 'a3',
    recurrence: RECURRENCE_EXAMPLE,
    reminders: [{ id: '5d0c1f7e-2a4b-4c6d-8e9f-0a1b2c3d4e5f', offsetMinutes: -30, missedAt: null }],
  }

export const TaskJson = Type.Object({
  id: Uuid,
  title: Type.String(),
  description: Nullable(Type.String()),
  completed: Type.Boolean(),
  completedAt: Nullable(DateTime()),
  priority: Priority,
  dueAt: Nullable(DateTime()),
  tags: Type.Array(Type.String()),
  createdAt: DateTime(),
  updatedAt: DateTime(),
  version: Type.Integer({ description: 'Starts at 1; +1 on every change' }),
  projectId: Nullable(Type.String({ format: 'uuid', description: 'Its project; null: the inbox' })),
  parentId: Nullable(Type.String({ format: 'uuid', description: 'The task it is a subtask of; null: top level' })),
  position: Type.String({ description: 'Its place among its siblings; opaque, sorts in byte order. Change it with POST /api/v1/tasks/{id}/move' }),
  recurrence: Nullable(RecurrenceJson),
  reminders: Type.Array(ReminderJson, { description: 'Empty when it has none. Each firing reaches you as a reminder change (sync, events)' }),
}, { title: 'Task', examples: [TASK_EXAMPLE] })
export type TaskJson = Static<typeof TaskJson>
/** A task as the queries return it: a row is already its JSON. */
export type Task = TaskJson

export const TaskPageJson = Type.Object({
  items: Type.Array(TaskJson),
  nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null on the last page' })),
}, { title: 'TaskPage', examples: [{ items: [TASK_EXAMPLE], nextCursor: null }] })
