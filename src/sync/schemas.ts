import { Type } from '@fastify/type-provider-typebox'
import { DateTime, Uuid } from '../http/schemas.js'
import { TaskJson } from '../tasks/schemas.js'
import type { ChangeOut } from './queries.js'

export const SyncQuery = Type.Object({
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'The cursor of your last sync; omit it for the full state' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 500 })),
}, { additionalProperties: false })

export const UpsertChangeJson = Type.Object({ op: Type.Literal('upsert'), task: TaskJson }, { title: 'TaskUpsert' })
export const DeleteChangeJson = Type.Object({ op: Type.Literal('delete'), id: Uuid, deletedAt: DateTime() }, { title: 'TaskDeletion' })
export const ChangeJson = Type.Union([UpsertChangeJson, DeleteChangeJson], { title: 'Change' })

export const SyncPageJson = Type.Object({
  changes: Type.Array(ChangeJson, { description: 'Each task at most once, in its latest state, in log order' }),
  cursor: Type.String({ description: 'Pass as since next time; valid until the retention period drops it' }),
  hasMore: Type.Boolean({ description: 'True: call again at once with the new cursor' }),
}, { title: 'SyncPage' })

export const toChangeJson = (change: ChangeOut) => change.op === 'upsert'
  ? { op: 'upsert' as const, task: change.task }
  : { op: 'delete' as const, id: change.id, deletedAt: change.deletedAt }
