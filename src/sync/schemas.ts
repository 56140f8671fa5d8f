import { Type } from 'typebox'
import { DateTime, Uuid } from '../http/schemas.js'
import { ProjectJson } from '../projects/schemas.js'
import { ReminderFiredJson, ReminderMissedJson } from '../reminders/schemas.js'
import { TaskJson } from '../tasks/schemas.js'
import type { ChangeOut } from './queries.js'

export const SyncQuery = Type.Object({
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'The cursor of your last sync; omit it for the full state' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 500 })),
}, { additionalProperties: false })

export const TaskUpsertJson = Type.Object({ type: Type.Literal('task'), op: Type.Literal('upsert'), task: TaskJson }, { title: 'TaskUpsert' })
export const TaskDeletionJson = Type.Object({ type: Type.Literal('task'), op: Type.Literal('delete'), id: Uuid, deletedAt: DateTime() }, { title: 'TaskDeletion' })
export const ProjectUpsertJson = Type.Object({ type: Type.Literal('project'), op: Type.Literal('upsert'), project: ProjectJson }, { title: 'ProjectUpsert' })
export const ProjectDeletionJson = Type.Object({
  type: Type.Literal('project'), op: Type.Literal('delete'), id: Uuid, deletedAt: DateTime(),
}, { title: 'ProjectDeletion', description: 'The project is gone, and with it every task that was in it (each has its own deletion)' })
export const ReminderFiredChangeJson = Type.Object({ type: Type.Literal('reminder'), op: Type.Literal('fired'), reminder: ReminderFiredJson }, {
  title: 'ReminderFiredChange',
  description: 'A reminder fired: each firing is its own change, never collapsed. Only in a sync with a cursor (and on the event stream): ' +
    'a first sync sends current state, not past firings',
})
export const ReminderMissedChangeJson = Type.Object({ type: Type.Literal('reminder'), op: Type.Literal('missed'), reminder: ReminderMissedJson }, {
  title: 'ReminderMissedChange',
  description: 'A firing the server was down for, past REMINDER_GRACE_MINUTES: recorded, not to be shown as news',
})
export const ChangeJson = Type.Union([TaskUpsertJson, TaskDeletionJson, ProjectUpsertJson, ProjectDeletionJson, ReminderFiredChangeJson, ReminderMissedChangeJson], {
  title: 'Change',
  description: 'One of these types, and later perhaps others: a client skips a type (or an op) it does not know',
})

export const SyncPageJson = Type.Object({
  changes: Type.Array(ChangeJson, {
    description: 'Each task and project at most once, in its latest state, and each reminder firing, in log order. A first sync sends every project before any task, and no firings',
  }),
  cursor: Type.String({ description: 'Pass as since next time; valid until the retention period drops it' }),
  hasMore: Type.Boolean({ description: 'True: call again at once with the new cursor' }),
}, { title: 'SyncPage' })

export const toChangeJson = (change: ChangeOut) => {
  if (change.type === 'reminder') {
    return change.op === 'fired'
      ? { type: change.type, op: change.op, reminder: change.reminder }
      : { type: change.type, op: change.op, reminder: change.reminder }
  }
  if (change.op === 'delete') return { type: change.type, op: change.op, id: change.id, deletedAt: change.deletedAt }
  return change.type === 'task'
    ? { type: change.type, op: change.op, task: change.task }
    : { type: change.type, op: change.op, project: change.project }
}
