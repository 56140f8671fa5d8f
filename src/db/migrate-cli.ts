// `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded database in
// DATA_DIR, then exits. The server does the same on start; this is for deploy pipelines.
import { loadConfig } from '../config.js'
import { exitAfterFailedStart } from '../start-errors.js'
import { openEmbedded, openPostgres } from './client.js'
import { lockDataDir } from './data-dir-lock.js'

async function main (): Promise<void> {
  const config = loadConfig()
  const release = config.databaseUrl === undefined ? await lockDataDir(config.dataDir) : () => {}
  const database = config.databaseUrl === undefined
    ? await openEmbedded(config.dataDir)
    : await openPostgres({ url: config.databaseUrl, poolSize: 1 })
  try {
    await database.migrate()
    console.log(`migrations applied (${database.kind} database)`)
  } finally {
    await database.close()
    release()
  }
}

main().catch((error: unknown) => exitAfterFailedStart(error, 'migrations failed'))
