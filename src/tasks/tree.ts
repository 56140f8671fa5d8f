import type { Database } from '../db/client.js'
import { LOCK_USER_MOVES } from '../db/locks.js'
import { placement, type Placed, type Siblings } from '../db/position.js'
import { queryOne, statement, type Sql } from '../db/sql.js'
import type { IfVersions } from '../http/conditional.js'
import { badRequest, cycle, notFound, notFoundAt, preconditionFailed, tooDeep } from '../http/problem.js'
import type { MoveTaskBody, Task } from './schemas.js'
import { parameters, SUBTREE, TASK_COLUMNS } from './sql.js'

/** The deepest level a task may sit at: 0 is the top, so four levels in all. */
export const MAX_DEPTH = 3

interface Node {
  id: string
  projectId: string | null
  parentId: string | null
  depth: number
  position: string
  version: number
}

const NODE = 't.id, t.project_id as "projectId", t.parent_id as "parentId", t.depth, t.position, t.version'
const LOCK = statement(`select ${NODE} from tasks t where t.user_id = $1 and t.id = $2 for update`)
/**
 * The subtree is locked before the first write, which also takes the user's row: a write to one of
 * its tasks (its row, then the user's) then waits for the move instead of deadlocking with it.
 */
const LOCK_SUBTREE = statement(`${SUBTREE} select count(*)::int as locked from (
    select 1 from tasks t where t.user_id = $1 and t.id in (select id from subtree) for no key update
  ) rows`)
const FIND = statement(`select ${NODE} from tasks t where t.user_id = $1 and t.id = $2`)
// The destination is held (FOR KEY SHARE) until the move commits: a delete of it waits, and one that
// committed first leaves nothing to find, a 404, rather than a foreign key failing at the write.
const HOLD_PARENT = statement(`select ${NODE} from tasks t where t.user_id = $1 and t.id = $2 for key share`)
const HOLD_PROJECT = statement('select 1 as found from projects p where p.user_id = $1 and p.id = $2 for key share')
/** How many levels hang under $2: 0 for a task without subtasks. */
const HEIGHT = statement(`with recursive below (id, level) as (
    select c.id, 1 from tasks c where c.user_id = $1 and c.parent_id = $2
    union all
    select c.id, b.level + 1 from tasks c join below b on c.parent_id = b.id where c.user_id = $1
  ) select coalesce(max(level), 0)::int as height from below`)
const IS_UNDER = statement(`${SUBTREE} select 1 as found from subtree where id = $3`)
const PLACE = statement(`update tasks t set project_id = $3, parent_id = $4, depth = $5, position = $6,
  version = t.version + 1, updated_at = now() where t.user_id = $1 and t.id = $2 returning ${TASK_COLUMNS}`)
/** The subtree follows its root: into its project, down or up by the same number of levels. */
const CARRY_SUBTREE = statement(`${SUBTREE} update tasks d set project_id = $3, depth = d.depth + $4, version = d.version + 1,
  updated_at = now() where d.user_id = $1 and d.id in (select id from subtree)`)

/** Gives siblings new keys ($2: ids, $3: keys, in step), in one statement. */
const REPOSITION = statement(`update tasks t set position = k.position, version = t.version + 1, updated_at = now()
  from unnest($2::uuid[], $3::text[]) as k (id, position) where t.user_id = $1 and t.id = k.id`)

/** The siblings at a destination: the parent's subtasks, or the top-level tasks of a project (or of the inbox). */
function siblingsAt (tx: Sql, userId: string, moving: string, projectId: string | null, parentId: string | null): Siblings {
  return {
    moving,
    async find (id) {
      const node = await queryOne<Node>(tx, FIND, [userId, id])
      if (!node) return undefined
      const sibling = node.parentId === parentId && (parentId !== null || node.projectId === projectId)
      return { row: { id: node.id, position: node.position }, sibling }
    },
    // One scan of (user_id, parent_id, position, id) or (user_id, project_id, position, id).
    near (row, side, count) {
      const { values, add } = parameters(userId, moving)
      const scope = parentId !== null
        ? `t.parent_id = ${add(parentId)}::uuid`
        : `t.parent_id is null and ${projectId === null ? 't.project_id is null' : `t.project_id = ${add(projectId)}::uuid`}`
      const beyond = row === null ? '' : ` and (t.position, t.id) ${side === 'after' ? '>' : '<'} (${add(row.position)}, ${add(row.id)}::uuid)`
      const direction = side === 'after' ? 'asc' : 'desc'
      return tx.query<Placed>(statement(`select t.id, t.position from tasks t where t.user_id = $1 and t.id <> $2 and ${scope}${beyond} ` +
        `order by t.position ${direction}, t.id ${direction} limit ${add(count)}`), values)
    },
    async reposition (rows) {
      await tx.query(REPOSITION, [userId, rows.map((r) => r.id), rows.map((r) => r.position)])
    },
  }
}

/**
 * Moves a task with its whole subtree, atomically: to another project, under another parent, or
 * between two siblings. Every moved row is written (so each reaches sync and the event streams);
 * the task's own place among its new siblings is one new key, no sibling renumbered.
 */
export function taskTree (db: Database, { changed = (_userId: string) => {} } = {}) {
  /** Where the task goes: its new project, parent and depth. Throws the refusal when it cannot go there. */
  async function destination (tx: Sql, userId: string, task: Node, to: MoveTaskBody):
    Promise<{ projectId: string | null, parentId: string | null, depth: number }> {
    if (to.parentId !== undefined && to.parentId !== null) {
      const parent = await queryOne<Node>(tx, HOLD_PARENT, [userId, to.parentId])
      if (!parent) throw notFoundAt('parent task', 'body.parentId')
      if (parent.id === task.id || await queryOne(tx, IS_UNDER, [userId, task.id, parent.id])) throw cycle()
      if (to.projectId !== undefined && to.projectId !== parent.projectId) {
        throw badRequest('A subtask lives in its parent\'s project: leave projectId out, or give the parent\'s',
          [{ path: 'body.projectId', message: 'is not the project of the parent task' }])
      }
      return { projectId: parent.projectId, parentId: parent.id, depth: parent.depth + 1 }
    }
    const projectId = to.projectId === undefined ? task.projectId : to.projectId
    if (projectId !== null && projectId !== task.projectId && !await queryOne(tx, HOLD_PROJECT, [userId, projectId])) {
      throw notFoundAt('project', 'body.projectId')
    }
    // Staying in its project, a subtask keeps its parent unless told; moving to another, it goes to the top.
    const parentId = to.parentId === undefined && projectId === task.projectId ? task.parentId : null
    return { projectId, parentId, depth: parentId === null ? 0 : task.depth }
  }

  return {
    /**
     * The task, moved. Throws the refusal (404, 400, 409, or 412 when `ifVersions` is stale); a
     * refused move changes nothing.
     */
    async move (userId: string, taskId: string, to: MoveTaskBody, ifVersions?: IfVersions): Promise<Task> {
      const moved = await db.transaction(async (tx) => {
        await tx.query(LOCK_USER_MOVES, [userId])
        const task = await queryOne<Node>(tx, LOCK, [userId, taskId])
        if (!task) throw notFound('task')
        if (ifVersions !== undefined && !ifVersions.includes(task.version)) throw preconditionFailed('task')
        await tx.query(LOCK_SUBTREE, [userId, taskId])
        const dest = await destination(tx, userId, task, to)
        const height = (await queryOne<{ height: number }>(tx, HEIGHT, [userId, taskId]))!.height
        if (dest.depth + height > MAX_DEPTH) throw tooDeep()
        const key = await placement(siblingsAt(tx, userId, taskId, dest.projectId, dest.parentId), to, 'task')
        const placed = (await queryOne<Task>(tx, PLACE, [userId, taskId, dest.projectId, dest.parentId, dest.depth, key]))!
        if (height > 0 && (dest.projectId !== task.projectId || dest.depth !== task.depth)) {
          await tx.query(CARRY_SUBTREE, [userId, taskId, dest.projectId, dest.depth - task.depth])
        }
        return placed
      })
      changed(userId)
      return moved
    },
  }
}

export type TaskTree = ReturnType<typeof taskTree>
