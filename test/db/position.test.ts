import { describe, expect, it } from 'vitest'
import { MAX_KEY_LENGTH, placement, type Placed, type Siblings } from '../../src/db/position.js'

/**
 * The placement rule over a list kept in memory, as the database keeps it: rows in (position, id)
 * order. Thousands of moves here take milliseconds; test/projects/move.test.ts drives the same code
 * through HTTP on both databases.
 */
function list (count: number) {
  const rows: Placed[] = Array.from({ length: count }, (_, i) => ({ id: `id-${String(i).padStart(5, '0')}`, position: `a${'0123456789'[i]}` }))
  const ordered = () => [...rows].sort((a, b) => a.position < b.position ? -1 : a.position > b.position ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  let written = 0
  const siblings = (moving: string): Siblings => ({
    moving,
    async find (id) {
      const row = rows.find((r) => r.id === id)
      return row && { row: { ...row }, sibling: true }
    },
    async near (row, side, count) {
      const others = ordered().filter((r) => r.id !== moving)
      if (row === null) return (side === 'after' ? others : others.reverse()).slice(0, count)
      const at = others.findIndex((r) => r.id === row.id)
      return (side === 'after' ? others.slice(at + 1) : others.slice(0, at).reverse()).slice(0, count)
    },
    async reposition (changed) {
      written += changed.length
      for (const { id, position } of changed) rows.find((r) => r.id === id)!.position = position
    },
  })
  return {
    order: () => ordered().map((r) => r.id),
    longest: () => Math.max(...rows.map((r) => r.position.length)),
    written: () => written,
    async move (id: string, to: { beforeId?: string, afterId?: string }) {
      const key = await placement(siblings(id), to, 'task')
      rows.find((r) => r.id === id)!.position = key
    },
  }
}

describe('placing rows among their siblings', () => {
  it(`keeps every key within ${MAX_KEY_LENGTH} characters over 10,000 moves into one spot, in the order asked`, async () => {
    const l = list(10)
    const [a, b, c] = ['id-00007', 'id-00008', 'id-00002']
    for (let i = 0; i < 10_000; i++) {
      // Two rows moved alternately just before one sibling: each lands between the other and c.
      await l.move(i % 2 === 0 ? a : b, { beforeId: c })
      const order = l.order()
      expect(order.indexOf(i % 2 === 0 ? a : b)).toBe(order.indexOf(c) - 1)
    }
    expect(l.longest()).toBeLessThanOrEqual(MAX_KEY_LENGTH)
    // Respacing rewrites the few rows around the gap, not the list, and seldom: far below a row per move.
    expect(l.written()).toBeLessThan(10_000)
  })

  it('keeps keys short when moves alternate sides of one gap, and after afterId and beforeId both', async () => {
    const l = list(6)
    const order = l.order()
    for (let i = 0; i < 3_000; i++) {
      const mover = order[3 + (i % 3)]!
      const current = l.order().filter((id) => id !== mover)
      const gap = current.indexOf(order[0]!) // always just after the first row
      const to = i % 3 === 0 ? { afterId: current[gap]! } : i % 3 === 1 ? { beforeId: current[gap + 1]! } : { afterId: current[gap]!, beforeId: current[gap + 1]! }
      await l.move(mover, to)
      expect(l.order()[1]).toBe(mover)
    }
    expect(l.longest()).toBeLessThanOrEqual(MAX_KEY_LENGTH)
  })

  it('never changes the order of the rows it respaces', async () => {
    const l = list(10)
    for (let i = 0; i < 2_000; i++) {
      const before = l.order()
      const mover = before[9]!
      await l.move(mover, { afterId: before[4]! })
      const expected = before.filter((id) => id !== mover)
      expected.splice(5, 0, mover)
      expect(l.order()).toEqual(expected)
    }
    expect(l.longest()).toBeLessThanOrEqual(MAX_KEY_LENGTH)
  })

  it('refuses the row itself as a neighbour, and beforeId before afterId, with a 400 naming the field', async () => {
    const l = list(4)
    const [first, second, , last] = l.order()
    await expect(l.move(last!, { beforeId: last! })).rejects.toMatchObject({ status: 400, errors: [{ path: 'body.beforeId' }] })
    await expect(l.move(last!, { afterId: second!, beforeId: first! })).rejects.toMatchObject({ status: 400, errors: [{ path: 'body.beforeId' }] })
    await expect(l.move(last!, { afterId: 'id-missing' })).rejects.toMatchObject({ status: 404, errors: [{ path: 'body.afterId' }] })
  })
})
