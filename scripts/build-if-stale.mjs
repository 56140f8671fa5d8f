// `npm start` runs this first: it compiles src/ to dist/ only when a source file (or the compiler's
// configuration) is newer than the last build. tsc checks the whole program even when nothing
// changed, which cost ~7 s on every start (issue 10); this check costs a few milliseconds.
// `npm run build` runs it with --force: it compiles whatever the times say and stamps the build the
// same way, so the `npm start` after it does not compile again.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const stamp = join(root, 'dist', '.tsbuildinfo')

/** The newest modification time under `dir`, in milliseconds. */
function newest (dir) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

const force = process.argv.includes('--force')
let built = 0
try { built = statSync(stamp).mtimeMs } catch { /* never built */ }
const sources = Math.max(newest(join(root, 'src')), ...['tsconfig.json', 'tsconfig.build.json', 'package-lock.json']
  .map((file) => statSync(join(root, file)).mtimeMs))
if (force || sources > built) {
  if (!force) console.error(built === 0 ? 'building taskbase (first start)...' : 'sources changed since the last build; rebuilding...')
  const startedAt = new Date()
  // --noCheck: emit only. Type-checking the whole program tripled the first start of a fresh clone
  // (24.6 s against 9.3 s at a load of 4, measured with tsc -p tsconfig.build.json); `npm test` checks
  // the types, and the output is the same file for file.
  const result = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--noCheck'], { stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
  // tsc leaves its build info alone when the output would not change (a file touched, not edited).
  // Stamped with the start: a source saved while tsc ran is newer, and makes the next start build.
  utimesSync(stamp, startedAt, startedAt)
}
