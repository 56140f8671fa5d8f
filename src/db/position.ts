import { generateKeyBetween, generateNKeysBetween } from 'fractional-indexing'
import { badRequest, notFoundAt } from '../http/problem.js'

/**
 * Where a row lands among its siblings: between the keys of its neighbours (fractional indexing,
 * the npm package of the same name), so a move normally writes one row. Keys compare in byte order
 * (the columns are COLLATE "C"); a new row's key is made by the insert trigger (migration 0011),
 * after every other key.
 *
 * Keys placed into one gap again and again grow by about a character every five moves, and the list's
 * cursors carry them. Past MAX_KEY_LENGTH the rows around the gap are given fresh, short keys in the
 * same transaction (see `respace`), so no key the server writes is ever longer.
 */
export const MAX_KEY_LENGTH = 24

/** A row among the siblings it can be placed next to. */
export interface Placed {
  id: string
  position: string
}

/** What a placement needs of the rows around the one being placed (which none of these may return). */
export interface Siblings {
  /** The id of the row being placed. */
  readonly moving: string
  /** The row of that id, if the user has it, and whether it is a sibling at the destination. */
  find (id: string): Promise<{ row: Placed, sibling: boolean } | undefined>
  /**
   * Up to `count` siblings beyond `row` on `side`, nearest first, in (position, id) order. With
   * `row` null: from the end going back ('before'), or from the start going forward ('after').
   */
  near (row: Placed | null, side: 'before' | 'after', count: number): Promise<Placed[]>
  /** Gives siblings new keys, in one statement; each is a change (new version, in sync). */
  reposition (rows: Placed[]): Promise<void>
}

/** The key between two neighbours; undefined when they tie (or are out of order), with no key between. */
export function keyBetween (before: string | null, after: string | null): string | undefined {
  if (before !== null && after !== null && before >= after) return undefined
  return generateKeyBetween(before, after)
}

/** (position, id) order, the order of every list of siblings. */
const precedes = (a: Placed, b: Placed) => a.position < b.position || (a.position === b.position && a.id < b.id)

export interface PlaceTo {
  beforeId?: string
  afterId?: string
}

/**
 * The key that puts the row just before `beforeId`, just after `afterId`, or last. With both, the
 * row goes between them; when another row has landed between them since the client looked (two
 * drag-and-drops into one gap), right after `afterId`. Throws the problem to answer: a 404 for an id
 * that is not the user's (the same as one that does not exist), a 400 for one that is not a sibling,
 * is the row itself, or (`beforeId`) does not come after `afterId`.
 */
export async function placement (siblings: Siblings, { beforeId, afterId }: PlaceTo, what: 'task' | 'project'): Promise<string> {
  const lookUp = async (id: string, field: 'beforeId' | 'afterId'): Promise<Placed> => {
    const path = `body.${field}`
    if (id === siblings.moving) {
      throw badRequest(`A ${what} cannot be placed next to itself`, [{ path, message: `is the ${what} being moved` }])
    }
    const found = await siblings.find(id)
    if (!found) throw notFoundAt(`${what} ${field}`, path)
    if (!found.sibling) {
      throw badRequest(`The ${what} ${field} names is not a sibling at the destination (same project and parent)`,
        [{ path, message: 'is not a sibling at the destination' }])
    }
    return found.row
  }
  const after = afterId === undefined ? undefined : await lookUp(afterId, 'afterId')
  const before = beforeId === undefined ? undefined : await lookUp(beforeId, 'beforeId')
  if (after && before && !precedes(after, before)) {
    throw badRequest('beforeId must come after afterId: they name the two sides of one gap',
      [{ path: 'body.beforeId', message: 'does not come after afterId' }])
  }
  let left: Placed | undefined
  let right: Placed | undefined
  if (after) {
    left = after
    // Right after afterId: its next sibling is beforeId, or one that has landed in the gap since.
    right = (await siblings.near(after, 'after', 1))[0]
  } else if (before) {
    right = before
    left = (await siblings.near(before, 'before', 1))[0]
  } else {
    left = (await siblings.near(null, 'before', 1))[0]
  }
  const key = keyBetween(left?.position ?? null, right?.position ?? null)
  if (key !== undefined && key.length <= MAX_KEY_LENGTH) return key
  return respace(siblings, left, right)
}

/** First reach of a respacing on each side; it grows fourfold until the keys come out short. */
const FIRST_REACH = 4

/**
 * Gives the rows around the gap between `left` and `right` fresh keys, evenly spread between the
 * first rows outside that window, and returns the key for the gap. The window widens until those keys
 * fit MAX_KEY_LENGTH; at worst it is the whole list, whose keys are then `a0`, `a1`, ...
 * Rows outside the window keep their keys, and so their place: the order never changes.
 */
async function respace (siblings: Siblings, left: Placed | undefined, right: Placed | undefined): Promise<string> {
  for (let reach = FIRST_REACH; ; reach *= 4) {
    // Each side: the window (nearest first), and the first row outside it, null at an end of the list.
    const side = async (edge: Placed | undefined, direction: 'before' | 'after') => {
      if (!edge) return { window: [] as Placed[], bound: null }
      const beyond = await siblings.near(edge, direction, reach)
      return beyond.length < reach
        ? { window: [edge, ...beyond], bound: null }
        : { window: [edge, ...beyond.slice(0, -1)], bound: beyond.at(-1)!.position }
    }
    const [lower, upper] = await Promise.all([side(left, 'before'), side(right, 'after')])
    const bothEnds = lower.bound === null && upper.bound === null
    if (!bothEnds && keyBetween(lower.bound, upper.bound) === undefined) continue // the bounds tie: wider
    const count = lower.window.length + 1 + upper.window.length
    const keys = generateNKeysBetween(lower.bound, upper.bound, count)
    if (!bothEnds && keys.some((key) => key.length > MAX_KEY_LENGTH)) continue
    const rows = [...lower.window.reverse(), undefined, ...upper.window]
    await siblings.reposition(rows.flatMap((row, i) => row ? [{ id: row.id, position: keys[i]! }] : []))
    return keys[lower.window.length]!
  }
}
