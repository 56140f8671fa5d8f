import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import {
  register, request, SHARED_URL, startServer, stopServer, throwawayDatabase, waitUntilUp, within, type ServerProcess,
} from '../faults/support.js'

const run = promisify(execFile)

/** The pids of the processes `pid` started. */
async function childrenOf (pid: number): Promise<number[]> {
  const { stdout } = await run('ps', ['--ppid', String(pid), '-o', 'pid=']).catch(() => ({ stdout: '' }))
  return stdout.split('\n').map((line) => Number(line.trim())).filter((n) => n > 0)
}

describe.skipIf(!SHARED_URL)('WORKERS=2 on a server database', () => {
  let server: ServerProcess | undefined
  let drop: (() => Promise<void>) | undefined
  afterAll(async () => {
    await stopServer(server)
    await drop?.()
  })

  it('serves from two processes on one port, signing with one secret kept in the database, and stops them both on SIGTERM', async () => {
    const database = await throwawayDatabase(SHARED_URL!)
    drop = database.drop
    // No JWT_SECRET: the first process generates one into the database; the other reads it.
    server = await startServer({ DATABASE_URL: database.url, JWT_SECRET: '', WORKERS: '2' })
    await waitUntilUp(server)
    expect(await childrenOf(server.pid)).toHaveLength(2)

    // Written through one process, read through any: they share the database and the secret.
    const account = await register(server.base)
    const created = await request(server.base, '/api/v1/tasks', { method: 'POST', headers: account.auth, json: { title: 'From a worker' } })
    expect(created.status).toBe(201)
    const reads = await Promise.all(Array.from({ length: 20 }, () => request(server!.base, '/api/v1/tasks', { headers: account.auth })))
    expect(reads.map((r) => r.status)).toEqual(Array(20).fill(200))

    const workers = await childrenOf(server.pid)
    process.kill(server.pid, 'SIGTERM')
    expect(await within(server.exited, 12_000, 'exit after SIGTERM')).toBe(0)
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow() // gone too

    // Restarted, it signs with the same secret: the token still works.
    server = await startServer({ DATABASE_URL: database.url, JWT_SECRET: '' })
    await waitUntilUp(server)
    expect((await request(server.base, '/api/v1/tasks', { headers: account.auth })).status).toBe(200)
  })
})
