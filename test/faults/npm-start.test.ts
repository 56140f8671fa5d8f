import { spawn, type ChildProcess } from 'node:child_process'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, JWT_SECRET, removeDir, seededDataDir, serverEnv, SHARED_URL, sleep, throwawayDatabase } from './support.js'

/**
 * `npm start`, the command the README gives operators, stopped as a supervisor stops it: a signal
 * to npm's own pid, not to its process group. npm passes SIGTERM and SIGINT to the one process it
 * spawned; when that was `sh -c "node dist/server.js"`, the shell (dash) died and left the server
 * running on the port and the data directory.
 */
interface NpmStart { npm: ChildProcess, base: string, output (): string, exited: Promise<number | null> }

async function npmStart (env: Record<string, string>): Promise<NpmStart> {
  const port = await freePort()
  // detached: a process group of its own, so the test can tell whether anything of it survives.
  const npm = spawn('npm', ['start'], { env: serverEnv(port, env), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  npm.stdout!.on('data', (d) => { output += d })
  npm.stderr!.on('data', (d) => { output += d })
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)))
  return { npm, base: `http://127.0.0.1:${port}`, output: () => output, exited }
}

/** npm start builds first when a source file is newer than dist/ (~10-20 s), then starts. */
async function waitUp (started: NpmStart, timeoutMs = 90_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    if (started.npm.exitCode !== null || started.npm.signalCode !== null) throw new Error(`npm start exited: ${started.output()}`)
    try {
      if ((await fetch(`${started.base}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) return
    } catch { /* building, or not listening yet */ }
  }
  throw new Error(`npm start did not come up in ${timeoutMs} ms: ${started.output()}`)
}

/** Whether any process (a zombie included) is left in the group npm leads. */
const groupAlive = (pgid: number) => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}
const answers = async (base: string) => {
  try {
    await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) })
    return true
  } catch {
    return false
  }
}

describe('npm start, signalled', () => {
  const groups: number[] = []
  const dirs: string[] = []
  afterAll(async () => {
    for (const pgid of groups) if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL') // only what a failed test left
    for (const dir of dirs) await removeDir(dir)
  })

  /** Signals npm alone, then: the group is empty and the port silent within 10 s, after a drain. */
  const stopsOn = async (signal: NodeJS.Signals, env: Record<string, string>) => {
    const started = await npmStart(env)
    const pgid = started.npm.pid!
    groups.push(pgid)
    await waitUp(started)
    process.kill(pgid, signal)
    const signalledAt = Date.now()
    while ((groupAlive(pgid) || await answers(started.base)) && Date.now() - signalledAt < 10_000) await sleep(50)
    expect(groupAlive(pgid), `a process of npm's group outlived ${signal} by 10 s:\n${started.output()}`).toBe(false)
    expect(await answers(started.base)).toBe(false)
    expect(started.output()).toContain(`"signal":"${signal}","msg":"shutting down: draining in-flight requests"`)
    expect(await started.exited).toBe(0) // the server drained and exited 0, and npm with it
    return Date.now() - signalledAt
  }

  it.each(['SIGTERM', 'SIGINT'] as const)('stops the server on the embedded database when npm gets %s', async (signal) => {
    const dataDir = await seededDataDir('npm-start')
    dirs.push(dataDir)
    const ms = await stopsOn(signal, { DATA_DIR: dataDir, LOG_LEVEL: 'info' })
    console.log(`[faults] npm start, ${signal} to npm: group empty after ${ms} ms`)
  }, 120_000)

  it.skipIf(!SHARED_URL)('stops every server process with WORKERS=2 when npm gets SIGTERM', async () => {
    const database = await throwawayDatabase(SHARED_URL!)
    try {
      const ms = await stopsOn('SIGTERM', { DATABASE_URL: database.url, JWT_SECRET, WORKERS: '2', LOG_LEVEL: 'info' })
      console.log(`[faults] npm start with WORKERS=2, SIGTERM to npm: group empty after ${ms} ms`)
    } finally {
      await database.drop()
    }
  }, 120_000)
})
