import type { FastifyInstance } from 'fastify'

/**
 * Background jobs of the app: started when it is ready, stopped when it closes, each run logged
 * only when it fails. A run still going when the next is due is not started twice.
 */
export function runEvery (app: FastifyInstance, intervalMs: number, jobs: Record<string, () => Promise<unknown>>): void {
  let timer: NodeJS.Timeout | undefined
  const running = new Set<string>()
  const runAll = () => {
    for (const [name, job] of Object.entries(jobs)) {
      if (running.has(name)) continue
      running.add(name)
      job().catch((error: Error) => app.log.warn({ message: error.message }, `pruning ${name} failed`))
        .finally(() => running.delete(name))
    }
  }
  app.addHook('onReady', async () => {
    timer = setInterval(runAll, intervalMs)
    timer.unref()
  })
  app.addHook('onClose', async () => { clearInterval(timer) })
}
