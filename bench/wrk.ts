/** Load runs with wrk and bench/wrk.lua: tokens and task ids rotate from data files written here. */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { littlesLawStarved, type RunResult } from './results.js'
import { meanThinkMs, REQUESTS, type RequestKind, type Scenario, type SeededUser } from './scenarios.js'

const SCRIPT = fileURLToPath(new URL('wrk.lua', import.meta.url))
/** Two threads: wrk needs well under a core at these rates, and the server shares the machine's two. */
export const WRK_THREADS = 2
const TIMEOUT_SECONDS = 30
/** wrk ends on its own after the run; past this it is hung and gets SIGKILL. */
const GRACE_MS = 60_000
const RESULT_MARKER = 'BENCH_WRK_RESULT '

export interface WrkTarget {
  wrkPath: string
  baseUrl: string
  /** Holds the data files; see `writeUsersFile`. */
  workDir: string
}

interface WrkOutput {
  durationUs: number
  requests: number
  errors: { connect: number, read: number, write: number, status: number, timeout: number }
  latencyUs: { mean: number, p50: number, p95: number, p99: number, max: number }
}

/** The users for wrk.lua, written once per benchmark: token, tab, the user's task ids. */
export async function writeUsersFile (target: WrkTarget, users: SeededUser[]): Promise<void> {
  const lines = users.map((user) => `${user.token}\t${user.taskIds.join(' ')}\n`)
  await writeFile(usersFile(target), lines.join(''), { mode: 0o600 }) // access tokens
}

const usersFile = (target: WrkTarget) => join(target.workDir, 'wrk-users.tsv')

async function writeRequestsFile (target: WrkTarget, scenario: Scenario): Promise<string> {
  const path = join(target.workDir, `wrk-requests-${scenario.name}.tsv`)
  const lines = (Object.entries(scenario.mix) as Array<[RequestKind, number]>).map(([kind, weight]) => {
    const { method, path, body = '' } = REQUESTS[kind]
    return `${Math.round(weight)}\t${method}\t${path}\t${body}\n`
  })
  await writeFile(path, lines.join(''))
  return path
}

export async function runWrk (target: WrkTarget, scenario: Scenario, connections: number, durationSeconds: number,
  signal: AbortSignal): Promise<RunResult> {
  // wrk gives each thread connections / threads, rounded down: report what it really opened.
  const threads = Math.min(WRK_THREADS, connections)
  const opened = threads * Math.floor(connections / threads)
  // Only what wrk.lua reads: wrk is started by its full path and starts nothing itself.
  const env: Record<string, string> = {
    BENCH_WRK_USERS: usersFile(target),
    BENCH_WRK_REQUESTS: await writeRequestsFile(target, scenario),
    ...(scenario.thinkMs && { BENCH_WRK_THINK_MS: `${scenario.thinkMs.min}-${scenario.thinkMs.max}` }),
  }
  const args = ['-t', String(threads), '-c', String(opened), '-d', `${durationSeconds}s`,
    '--timeout', `${TIMEOUT_SECONDS}s`, '-s', SCRIPT, target.baseUrl]
  const output = parseOutput(await runToEnd(target.wrkPath, args, env, durationSeconds * 1000 + GRACE_MS, signal))

  const seconds = output.durationUs / 1e6
  const requestsPerSecond = seconds > 0 ? output.requests / seconds : 0
  const ms = (us: number) => us / 1000
  const latencyMs = {
    mean: ms(output.latencyUs.mean),
    p50: ms(output.latencyUs.p50),
    p95: ms(output.latencyUs.p95),
    p99: ms(output.latencyUs.p99),
    max: ms(output.latencyUs.max),
  }
  const { connect, read, write, status, timeout } = output.errors
  return {
    scenario: scenario.name,
    connections: opened,
    durationSeconds: seconds,
    requests: output.requests,
    requestsPerSecond,
    latencyMs,
    errors: { non2xx: status, socket: connect + read + write, timeouts: timeout },
    starved: littlesLawStarved(opened, requestsPerSecond, latencyMs.mean, meanThinkMs(scenario)),
  }
}

/** Runs `command` to its end and returns its standard output; stopped by pid on abort or past `limitMs`. */
async function runToEnd (command: string, args: string[], env: Record<string, string>, limitMs: number,
  signal: AbortSignal): Promise<string> {
  signal.throwIfAborted()
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const kill = (signalName: NodeJS.Signals) => { if (child.exitCode === null && child.signalCode === null) child.kill(signalName) }
  const onAbort = () => kill('SIGTERM')
  signal.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => kill('SIGKILL'), limitMs)
  try {
    const [code, killedBy] = await once(child, 'close') as [number | null, NodeJS.Signals | null]
    signal.throwIfAborted()
    if (code !== 0) {
      throw new Error(`${command} ${killedBy ? `was killed by ${killedBy}` : `exited with ${code}`}:\n${(stderr || stdout).trim()}`)
    }
    return stdout
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
  }
}

function parseOutput (stdout: string): WrkOutput {
  const line = stdout.split('\n').find((text) => text.startsWith(RESULT_MARKER))
  if (line === undefined) throw new Error(`wrk printed no result; its output:\n${stdout.trim()}`)
  return JSON.parse(line.slice(RESULT_MARKER.length)) as WrkOutput
}
