import { generateKeyBetween } from 'fractional-indexing'

/**
 * Where a row lands among its siblings: between the keys of its neighbours (fractional indexing,
 * the npm package of the same name): the move writes one row and never renumbers the others. Keys
 * compare in byte order (the columns are COLLATE "C"); a new row's key is made by the insert
 * trigger (migration 0011), after every other key.
 */
export interface Neighbours {
  /** The key of the sibling it lands after; null at the start. */
  before: string | null
  /** The key of the sibling it lands before; null at the end. */
  after: string | null
}

/**
 * The key between two neighbours. Two rows placed into one gap at the same time get the same key
 * (ties are ordered by id); when the neighbours themselves tie, there is no key strictly between
 * them, and undefined says so: the caller separates them first.
 */
export function keyBetween ({ before, after }: Neighbours): string | undefined {
  if (before !== null && after !== null && before >= after) return undefined
  return generateKeyBetween(before, after)
}

/** A row among the siblings it can be placed next to. */
export interface Placed {
  id: string
  position: string
}

/** What a placement needs of the rows around the one being placed (which none of these may return). */
export interface Siblings {
  /** The row of that id, if the user has it, and whether it is a sibling at the destination. */
  find (id: string): Promise<{ row: Placed, sibling: boolean } | undefined>
  /** The sibling just before or just after `row`, in (position, id) order. */
  next (row: Placed, side: 'before' | 'after'): Promise<Placed | undefined>
  /** The last sibling, if any. */
  last (): Promise<Placed | undefined>
  /** Gives a sibling a new key (only to separate two that tie). */
  reposition (id: string, key: string): Promise<void>
}

export type Placement =
  | { ok: true, key: string }
  | { ok: false, reason: 'missing' | 'not-sibling' | 'not-adjacent', field: 'beforeId' | 'afterId' }

/**
 * The key that puts a row just before `beforeId`, just after `afterId` (both: they must be adjacent),
 * or last. A row of another user is `missing`, as a row that does not exist.
 */
export async function placement (siblings: Siblings, { beforeId, afterId }: { beforeId?: string, afterId?: string }): Promise<Placement> {
  const lookUp = async (id: string, field: 'beforeId' | 'afterId') => {
    const found = await siblings.find(id)
    if (!found) return { ok: false, reason: 'missing', field } as const
    if (!found.sibling) return { ok: false, reason: 'not-sibling', field } as const
    return found.row
  }
  let left: Placed | undefined
  let right: Placed | undefined
  if (afterId !== undefined) {
    const found = await lookUp(afterId, 'afterId')
    if ('ok' in found) return found
    left = found
    right = await siblings.next(left, 'after')
  }
  if (beforeId !== undefined) {
    const found = await lookUp(beforeId, 'beforeId')
    if ('ok' in found) return found
    if (afterId !== undefined && right?.id !== found.id) return { ok: false, reason: 'not-adjacent', field: 'beforeId' }
    right = found
    left ??= await siblings.next(right, 'before')
  }
  if (afterId === undefined && beforeId === undefined) left = await siblings.last()
  let key = keyBetween({ before: left?.position ?? null, after: right?.position ?? null })
  if (key === undefined && left && right) {
    // The neighbours tie (two rows once placed into one gap at the same time): the right one moves
    // up to just before its own next, and the row goes between.
    let beyond = await siblings.next(right, 'after')
    while (beyond && beyond.position === right.position) beyond = await siblings.next(beyond, 'after')
    const separated = keyBetween({ before: right.position, after: beyond?.position ?? null })!
    await siblings.reposition(right.id, separated)
    key = keyBetween({ before: left.position, after: separated })!
  }
  return { ok: true, key: key! }
}
