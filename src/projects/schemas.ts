import { Type, type Static } from 'typebox'
import { DateTime, Nullable, StringEnum, Uuid } from '../http/schemas.js'

export const COLORS = ['red', 'orange', 'yellow', 'green', 'teal', 'blue', 'purple', 'pink', 'grey'] as const
export const Color = StringEnum(COLORS, { description: 'A color a front end can map to its palette' })
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S', description: 'Trimmed; not blank' })

const PROJECT_EXAMPLE = {
  id: '7c1e4a2b-3d5f-4e6a-8b9c-0d1e2f3a4b5c',
  name: 'Work',
  color: 'blue',
  archived: false,
  position: 'a0',
  createdAt: '2026-11-20T09:00:00.000Z',
  updatedAt: '2026-11-20T09:00:00.000Z',
  version: 1,
}

export const ProjectJson = Type.Object({
  id: Uuid,
  name: Type.String(),
  color: Nullable(Color),
  archived: Type.Boolean({ description: 'Archived projects are listed only with archived=true; their tasks stay' }),
  position: Type.String({ description: 'Opaque; sorts in byte order. Change it with POST /api/v1/projects/{id}/move' }),
  createdAt: DateTime(),
  updatedAt: DateTime(),
  version: Type.Integer({ description: 'Starts at 1; +1 on every change' }),
}, { title: 'Project', examples: [PROJECT_EXAMPLE] })
export type Project = Static<typeof ProjectJson>

export const ProjectPageJson = Type.Object({
  items: Type.Array(ProjectJson),
  nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null on the last page' })),
}, { title: 'ProjectPage', examples: [{ items: [PROJECT_EXAMPLE], nextCursor: null }] })

export const CreateProjectBody = Type.Object({
  name: Name,
  color: Type.Optional(Nullable(Color)),
}, { additionalProperties: false, title: 'NewProject', examples: [{ name: 'Work', color: 'blue' }] })
export type CreateProjectBody = Static<typeof CreateProjectBody>

export const UpdateProjectBody = Type.Object({
  name: Type.Optional(Name),
  color: Type.Optional(Nullable(Color)),
  archived: Type.Optional(Type.Boolean()),
}, { additionalProperties: false, minProperties: 1, title: 'ProjectChanges', examples: [{ name: 'Work (2027)', archived: false }] })
export type UpdateProjectBody = Static<typeof UpdateProjectBody>

export const MoveProjectBody = Type.Object({
  beforeId: Type.Optional(Uuid),
  afterId: Type.Optional(Uuid),
}, {
  additionalProperties: false,
  title: 'ProjectMove',
  description: 'beforeId: the project it lands just before; afterId: the one it lands just after (one, or both when adjacent); neither: last',
  examples: [{}],
})
export type MoveProjectBody = Static<typeof MoveProjectBody>

export const ProjectParams = Type.Object({ id: Uuid })

export const ListProjectsQuery = Type.Object({
  archived: Type.Optional(Type.Boolean({ default: false, description: 'false (default): active projects; true: archived ones' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'nextCursor of the previous page' })),
}, { additionalProperties: false })
export type ListProjectsQuery = Static<typeof ListProjectsQuery>
