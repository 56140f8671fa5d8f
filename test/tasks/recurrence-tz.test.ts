import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { register, removeDir, request, startServer, stopServer, tempDir, waitUntilUp, type ServerProcess } from '../faults/support.js'
import { buildTestApp, testDatabases, type TestApp } from '../helpers.js'

type Json = Record<string, any>
const YEAR = new Date().getUTCFullYear() + 2

/**
 * The server's own TZ variable changes no answer: a server process started with
 * TZ=America/Los_Angeles answers what the app in this process answers, for schedules that cross DST
 * changes (in Los Angeles' own dates too) and for completions. The embedded database is enough:
 * the zone arithmetic is the server's, not the database's.
 */
describe('recurring tasks on a server started with TZ=America/Los_Angeles', () => {
  let t: TestApp
  let server: ServerProcess | undefined
  let dataDir: string | undefined
  beforeAll(async () => {
    dataDir = await tempDir('recurrence-tz')
    server = await startServer({ DATA_DIR: dataDir, TZ: 'America/Los_Angeles' })
    t = await buildTestApp(testDatabases[0]!)
    await waitUntilUp(server)
  }, 60_000)
  afterAll(async () => {
    await stopServer(server)
    await removeDir(dataDir)
    await t?.close()
  })

  it('runs in a process whose local time really is Los Angeles\'', async () => {
    // What the variable does to a Node process on this machine: the comparison below means something.
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', 'console.log(new Date("2026-01-15T12:00:00Z").getTimezoneOffset())'],
      { env: { ...process.env, TZ: 'America/Los_Angeles' } })
    expect(stdout.trim()).toBe('480')
  })

  it('answers exactly what this process answers', async () => {
    const remote = await register(server!.base)
    const local = await t.signUp()
    /** One request to both servers: the same answer's body, or a failure naming both. */
    const both = async (method: string, path: (account: 'remote' | 'local') => string, json?: Json): Promise<[Json, Json]> => {
      const there = await request(server!.base, path('remote'), { method, headers: remote.auth, json })
      const here = await t.inject({ method: method as 'GET', url: path('local'), headers: local.headers, ...(json && { payload: json }) })
      expect(there.status, there.body).toBe(here.statusCode)
      return [JSON.parse(there.body), here.json()]
    }
    /** Task fields that depend on the rule, not on when or by whom it was written. */
    const schedule = (task: Json) => ({ dueAt: task.dueAt, completed: task.completed, recurrence: task.recurrence })

    const cases: Array<[string, string, string, Json?]> = [
      ['2026-01-30T09:00:00+01:00', 'FREQ=MONTHLY;BYDAY=-1FR', 'Europe/Berlin'],
      ['2026-03-06T02:30:00-05:00', 'FREQ=DAILY', 'America/New_York'],
      ['2026-10-30T01:30:00-04:00', 'FREQ=DAILY', 'America/New_York'],
      // Los Angeles' own changes (8 March, 1 November 2026), where a local-time bug would show.
      ['2026-03-06T02:30:00-08:00', 'FREQ=DAILY', 'America/Los_Angeles'],
      ['2026-10-31T01:30:00-07:00', 'FREQ=DAILY', 'America/Los_Angeles'],
      ['2026-01-31T23:30:00Z', 'FREQ=MONTHLY;BYMONTHDAY=-1', 'UTC'],
      ['2026-02-26T23:00:00+09:00', 'FREQ=WEEKLY;BYDAY=TH,SU;UNTIL=20260331', 'Asia/Tokyo'],
    ]
    for (const [dueAt, rule, timezone] of cases) {
      const payload = { title: rule, dueAt, recurrence: { rule, timezone } }
      const [there, here] = await both('POST', () => '/api/v1/tasks', payload)
      expect(schedule(there)).toEqual(schedule(here))
      const [thereNext, hereNext] = await both('GET', (who) => `/api/v1/tasks/${who === 'remote' ? there.id : here.id}/occurrences?limit=15`)
      expect(thereNext, `${rule} in ${timezone}`).toEqual(hereNext)
    }
    // Hand-written, so that two equally wrong answers cannot pass: 02:30 on 8 March 2026 does not
    // exist in Los Angeles (03:30 PDT, 10:30 UTC); 01:30 on 1 November happens twice (PDT first, 08:30 UTC).
    const [gapThere, gapHere] = await both('POST', () => '/api/v1/tasks',
      { title: 'gap', dueAt: '2026-03-07T02:30:00-08:00', recurrence: { rule: 'FREQ=DAILY', timezone: 'America/Los_Angeles' } })
    const expected = { items: [{ dueAt: '2026-03-07T10:30:00.000Z' }, { dueAt: '2026-03-08T10:30:00.000Z' }, { dueAt: '2026-03-09T09:30:00.000Z' }] }
    expect(await both('GET', (who) => `/api/v1/tasks/${who === 'remote' ? gapThere.id : gapHere.id}/occurrences?limit=3`)).toEqual([expected, expected])

    // Completions, from "due" and from "completion", move both the same way.
    for (const [rule, from] of [['FREQ=DAILY', 'due'], ['FREQ=DAILY;INTERVAL=2', 'completion']] as const) {
      const payload = { title: rule, dueAt: `${YEAR}-03-07T23:30:00-08:00`, recurrence: { rule, timezone: 'America/Los_Angeles', from } }
      const [there, here] = await both('POST', () => '/api/v1/tasks', payload)
      for (let i = 0; i < 3; i++) {
        const [thereDone, hereDone] = await both('PATCH', (who) => `/api/v1/tasks/${who === 'remote' ? there.id : here.id}`, { completed: true })
        expect(schedule(thereDone)).toEqual(schedule(hereDone))
      }
    }
  })
})
