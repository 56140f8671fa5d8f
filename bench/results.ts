/** One load run's figures, how starved connections are judged, and the report: a markdown table and JSON. */
import { writeFile } from 'node:fs/promises'

export interface LatencyMs { mean: number, p50: number, p95: number, p99: number, max: number }

/**
 * Connections that got (almost) no answers while others were served. A generator that sees each
 * connection counts them; wrk cannot, so its runs are judged by Little's law (see `littlesLawStarved`).
 */
export type Starved =
  | { method: 'per-connection', count: number }
  | { method: 'littles-law', flagged: boolean, concurrency: number }

export interface RunResult {
  scenario: string
  connections: number
  durationSeconds: number
  requests: number
  requestsPerSecond: number
  latencyMs: LatencyMs
  /** Answers outside 2xx, failed connections or writes or reads, requests past the 30 s timeout. */
  errors: { non2xx: number, socket: number, timeouts: number }
  starved: Starved
}

export interface Report {
  generator: string
  database: string
  serverEnv: string
  nodeVersion: string
  cpus: number
  loadAverageBefore: number[]
  loadAverageAfter: number[]
  warnings: string[]
  runs: RunResult[]
}

/** Nearest-rank percentiles of latencies in milliseconds (all zero when there were none). */
export function summarizeLatencies (latencies: Float64Array): LatencyMs {
  if (latencies.length === 0) return { mean: 0, p50: 0, p95: 0, p99: 0, max: 0 }
  const sorted = latencies.slice().sort()
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]!
  const sum = sorted.reduce((total, value) => total + value, 0)
  return { mean: sum / sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted.at(-1)! }
}

/**
 * Little's law: a closed loop of N connections keeps N requests in flight or thinking, so
 * throughput × (mean latency + mean think time) ≈ N. When the answered requests account for less than
 * half of N, the rest were waiting unanswered (in the accept queue or the server's backlog) when the
 * run ended, and their latency is missing from the percentiles.
 *
 * wrk 4 corrects its histogram for coordinated omission: it adds samples for the requests a slow answer
 * held back, spaced by the mean cycle of a connection. That raises the mean (so `concurrency` can exceed
 * N) and can only hide starvation, never invent it; with starved connections the mean cycle is long and
 * the correction adds little.
 */
export function littlesLawStarved (connections: number, requestsPerSecond: number, meanLatencyMs: number, meanThinkMs: number): Starved {
  const concurrency = requestsPerSecond * (meanLatencyMs + meanThinkMs) / 1000
  return { method: 'littles-law', flagged: concurrency < 0.5 * connections, concurrency }
}

/** Connections with less than a tenth of the median connection's answers: starved while others were served. */
export function countStarved (answersPerConnection: number[]): Starved {
  const sorted = [...answersPerConnection].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0
  return { method: 'per-connection', count: sorted.filter((answers) => answers < Math.max(1, median / 10)).length }
}

function starvedCell (starved: Starved): string {
  if (starved.method === 'per-connection') return String(starved.count)
  return starved.flagged ? '*' : ''
}

export function printReport (report: Report): void {
  const ms = (value: number) => value.toFixed(1)
  const header = ['scenario', 'connections', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'errors', 'starved']
  const body = report.runs.map((run) => [
    run.scenario,
    String(run.connections),
    Math.round(run.requestsPerSecond).toLocaleString('en-US'),
    ms(run.latencyMs.p50),
    ms(run.latencyMs.p95),
    ms(run.latencyMs.p99),
    ms(run.latencyMs.max),
    String(run.errors.non2xx + run.errors.socket + run.errors.timeouts),
    starvedCell(run.starved),
  ])
  const widths = header.map((title, c) => Math.max(title.length, ...body.map((row) => row[c]!.length)))
  const line = (cells: string[]) => `| ${cells.map((cell, c) => c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)).join(' | ')} |`
  const loads = (values: number[]) => values.map((value) => value.toFixed(2)).join(' ')

  console.log(`\ngenerator: ${report.generator}; database: ${report.database}; server env: ${report.serverEnv || '(none)'}`)
  console.log(`Node ${report.nodeVersion}, ${report.cpus} CPUs shared by server, database and load generator`)
  console.log(`load average (1, 5, 15 min) before: ${loads(report.loadAverageBefore)}, after: ${loads(report.loadAverageAfter)}\n`)
  console.log(line(header))
  console.log(`|${widths.map((width, c) => c === 0 ? `-${'-'.repeat(width)}-` : `-${'-'.repeat(width)}:`).join('|')}|`)
  for (const row of body) console.log(line(row))
  console.log()
  for (const run of report.runs) {
    const { non2xx, socket, timeouts } = run.errors
    if (non2xx + socket + timeouts > 0) {
      console.log(`${run.scenario} at ${run.connections}: ${non2xx} non-2xx, ${socket} socket errors, ${timeouts} timeouts`)
    }
  }
  if (report.runs.some((run) => run.starved.method === 'littles-law')) {
    console.log('starved `*`: throughput × (mean latency + think time) is under half the connections, so requests ' +
      'were still unanswered at the end and the percentiles leave them out')
    console.log('wrk corrects its percentiles for coordinated omission: they run higher than autocannon\'s on the same server')
  } else {
    console.log('starved: connections with under a tenth of the median connection\'s answers (in runs of a few ' +
      'seconds a paced user thinks up to 1.5 s first, so one slow answer can leave it at none)')
  }
  for (const warning of report.warnings) console.log(`warning: ${warning}`)
}

export async function writeReport (path: string, report: Report): Promise<void> {
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`)
}
