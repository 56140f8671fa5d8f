import { Type, type Static } from 'typebox'
import { DateTime, Nullable, StringEnum, Uuid } from '../http/schemas.js'
import { RecurrenceBody, RecurrenceJson } from '../recurrence/schemas.js'
import { ReminderJson, RemindersBody } from '../reminders/schemas.js'
import { Priority, type Task } from '../tasks/schemas.js'

// The contract of the todo front ends taskbase stands in for: snake_case, shorter limits, 422s. The
// later levels of that contract add priorities, tags and due dates, the same fields as v1's.
const Title = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })
const Description = Nullable(Type.String({ maxLength: 1000 }))
const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 50, pattern: '\\S' }), {
  maxItems: 20, description: 'Trimmed; duplicates (ignoring case) are dropped',
})
const DueDate = Nullable(DateTime({ description: 'RFC 3339 with a time zone, or null' }))

export const ClassicUserParams = Type.Object({
  user_id: Type.String({ minLength: 1, maxLength: 255, description: 'Your user id, or your identity provider\'s `sub`' }),
})
export const ClassicTaskParams = Type.Object({ ...ClassicUserParams.properties, id: Uuid })

export const CLASSIC_SORTS = ['created', 'due_date', 'priority', 'title'] as const

export const ClassicListQuery = Type.Object({
  status: Type.Optional(StringEnum(['all', 'pending', 'completed'], { default: 'all' })),
  search: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Case-insensitive, in the title or the description' })),
  priority: Type.Optional(Priority),
  tag: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 50 }), {
    maxItems: 20, description: 'Repeatable; a task must have every tag given (ignoring case)',
  })),
  due_before: Type.Optional(DateTime({ description: 'Tasks due strictly before' })),
  due_after: Type.Optional(DateTime({ description: 'Tasks due strictly after' })),
  sort: Type.Optional(StringEnum(CLASSIC_SORTS, { default: 'created', description: 'Tasks with no due date come last' })),
  order: Type.Optional(StringEnum(['asc', 'desc'], { description: 'desc by default for created (newest first), asc for the others' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1000, description: 'At most this many, and at most 4 MiB of JSON' })),
}, { additionalProperties: false })
export type ClassicListQuery = Static<typeof ClassicListQuery>

export const ClassicCreateBody = Type.Object({
  title: Title,
  description: Type.Optional(Description),
  priority: Type.Optional(Priority),
  tags: Type.Optional(Tags),
  due_date: Type.Optional(DueDate),
  recurrence: Type.Optional(RecurrenceBody),
  reminders: Type.Optional(RemindersBody),
}, { additionalProperties: false, title: 'ClassicNewTask', examples: [{ title: 'Buy milk', description: 'Two litres, oat', priority: 'medium', tags: ['errands'], due_date: '2026-12-01T17:00:00Z' }] })
export type ClassicCreateBody = Static<typeof ClassicCreateBody>

export const ClassicReplaceBody = Type.Object({
  title: Title,
  description: Type.Optional(Description),
  completed: Type.Optional(Type.Boolean()),
  priority: Type.Optional(Priority),
  tags: Type.Optional(Tags),
  due_date: Type.Optional(DueDate),
  recurrence: Type.Optional(RecurrenceBody),
  reminders: Type.Optional(RemindersBody),
}, {
  additionalProperties: false,
  title: 'ClassicTaskReplacement',
  description: 'Replaces every field: an omitted description or due_date becomes null, completed false, priority none, tags empty. ' +
    'A recurring task keeps its series and its due_date when they are omitted (recurrence: null stops the series); completed: true ' +
    'on it completes the current occurrence and moves due_date to the next, whatever due_date was sent. Omitted reminders are kept',
  examples: [{ title: 'Buy milk', description: 'Two litres, oat', completed: true, priority: 'medium', tags: ['errands'], due_date: '2026-12-05T10:00:00Z' }],
})
export type ClassicReplaceBody = Static<typeof ClassicReplaceBody>

export const ClassicTaskJson = Type.Object({
  id: Uuid,
  user_id: Type.String(),
  title: Type.String(),
  description: Nullable(Type.String()),
  completed: Type.Boolean(),
  priority: Priority,
  tags: Type.Array(Type.String()),
  due_date: Nullable(DateTime()),
  created_at: DateTime(),
  updated_at: DateTime(),
  recurrence: Nullable(RecurrenceJson),
  reminders: Type.Array(ReminderJson),
}, {
  title: 'ClassicTask',
  examples: [{
    id: '0b9a7c64-5b0f-4f7e-9a3e-4f1f2a8e6d11', user_id: 'ba_user_42', title: 'Buy milk', description: 'Two litres, oat', completed: false,
    priority: 'medium', tags: ['errands'], due_date: '2026-12-01T17:00:00.000Z', created_at: '2026-11-20T09:30:00.000Z', updated_at: '2026-11-20T09:30:00.000Z',
    recurrence: null, reminders: [],
  }],
})
export type ClassicTaskJson = Static<typeof ClassicTaskJson>

/** `userId` is the id the client used in the path: ours, or its identity provider's `sub`. */
export const toClassicTaskJson = (task: Task, userId: string): ClassicTaskJson => ({
  id: task.id,
  user_id: userId,
  title: task.title,
  description: task.description,
  completed: task.completed,
  priority: task.priority,
  tags: task.tags,
  due_date: task.dueAt,
  created_at: task.createdAt,
  updated_at: task.updatedAt,
  recurrence: task.recurrence,
  reminders: task.reminders,
})
