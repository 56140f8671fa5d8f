import { Type } from '@fastify/type-provider-typebox'
import { DateTime, Uuid } from '../http/schemas.js'
import { ProjectJson } from '../projects/schemas.js'
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
export const ChangeJson = Type.Union([TaskUpsertJson, TaskDeletionJson, ProjectUpsertJson, ProjectDeletionJson], { title: 'Change' })

export const SyncPageJson = Type.Object({
  changes: Type.Array(ChangeJson, {
    description: 'Each task and project at most once, in its latest state, in log order. A first sync sends every project before any task',
  }),
  cursor: Type.String({ description: 'Pass as since next time; valid until the retention period drops it' }),
  hasMore: Type.Boolean({ description: 'True: call again at once with the new cursor' }),
}, { title: 'SyncPage' })

export const toChangeJson = (change: ChangeOut) => {
  if (change.op === 'delete') return { type: change.type, op: change.op, id: change.id, deletedAt: change.deletedAt }
  return change.type === 'task'
    ? { type: change.type, op: change.op, task: change.task }
    : { type: change.type, op: change.op, project: change.project }
}
