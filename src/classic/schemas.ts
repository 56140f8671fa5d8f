import { Type, type Static } from '@fastify/type-provider-typebox'
import { Nullable, StringEnum, Uuid } from '../http/schemas.js'
import type { Task } from '../tasks/schemas.js'

// The contract of the todo front ends taskbase stands in for: snake_case, shorter limits, 422s.
const Title = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })
const Description = Nullable(Type.String({ maxLength: 1000 }))

export const ClassicUserParams = Type.Object({
  user_id: Type.String({ minLength: 1, maxLength: 255, description: 'Your user id, or your identity provider\'s `sub`' }),
})
export const ClassicTaskParams = Type.Object({ ...ClassicUserParams.properties, id: Uuid })

export const ClassicListQuery = Type.Object({
  status: Type.Optional(StringEnum(['all', 'pending', 'completed'], { default: 'all' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1000, description: 'Newest first' })),
}, { additionalProperties: false })

export const ClassicCreateBody = Type.Object({
  title: Title,
  description: Type.Optional(Description),
}, { additionalProperties: false })

export const ClassicReplaceBody = Type.Object({
  title: Title,
  description: Type.Optional(Description),
  completed: Type.Optional(Type.Boolean()),
}, { additionalProperties: false, description: 'Replaces all three fields: an omitted description becomes null, an omitted completed false' })
export type ClassicReplaceBody = Static<typeof ClassicReplaceBody>

export const ClassicTaskJson = Type.Object({
  id: Uuid,
  user_id: Type.String(),
  title: Type.String(),
  description: Nullable(Type.String()),
  completed: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
})
export type ClassicTaskJson = Static<typeof ClassicTaskJson>

/** `userId` is the id the client used in the path: ours, or its identity provider's `sub`. */
export const toClassicTaskJson = (task: Task, userId: string): ClassicTaskJson => ({
  id: task.id,
  user_id: userId,
  title: task.title,
  description: task.description,
  completed: task.completed,
  created_at: task.createdAt,
  updated_at: task.updatedAt,
})
