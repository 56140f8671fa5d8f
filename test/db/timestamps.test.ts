import { describe, expect, it } from 'vitest'
import { timeFromPostgres } from '../../src/db/timestamps.js'

// Every row read turns PostgreSQL's timestamptz text into the API's ISO form; the common UTC form is
// sliced, everything else parsed. Both paths must give the same answer.
describe('timeFromPostgres', () => {
  it.each([
    ['2026-12-07 08:44:16+00', '2026-12-07T08:44:16.000Z'],
    ['2026-12-07 08:44:16.1+00', '2026-12-07T08:44:16.100Z'],
    ['2026-12-07 08:44:16.12+00', '2026-12-07T08:44:16.120Z'],
    ['2026-12-07 08:44:16.123+00', '2026-12-07T08:44:16.123Z'],
    ['2026-12-07 08:44:16.123456+00', '2026-12-07T08:44:16.123Z'],
    ['0099-01-01 00:00:00+00', '0099-01-01T00:00:00.000Z'],
  ])('reads the UTC form %s', (text, iso) => {
    expect(timeFromPostgres(text)).toBe(iso)
  })

  it.each([
    ['2026-12-07 14:14:16.5+05:30', '2026-12-07T08:44:16.500Z'],
    ['2026-12-07 03:44:16-05', '2026-12-07T08:44:16.000Z'],
    ['12026-12-07 08:44:16+00', '+012026-12-07T08:44:16.000Z'],
    ['0001-01-01 00:00:00+00 BC', '0000-01-01T00:00:00.000Z'],
    ['infinity', 'infinity'],
  ])('reads any other form %s', (text, iso) => {
    expect(timeFromPostgres(text)).toBe(iso)
  })

  it('refuses text that is no time', () => {
    expect(() => timeFromPostgres('2026-12-07 08:44:16.+00x')).toThrow(TypeError)
  })
})
