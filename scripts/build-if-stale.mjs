// `npm start` runs this first: it compiles src/ to dist/ only when a source file (or the compiler's
// configuration) is newer than the last build. tsc checks the whole program even when nothing
// changed, which cost ~7 s on every start (issue 10); this check costs a few milliseconds.
// `npm run build` runs it with --force: it compiles whatever the times say and stamps the build the
// same way, so the `npm start` after it does not compile again.
// Then the embedded database's seed (src/db/embedded-seed.ts), which a first start copies instead of
// running initdb: made again when a migration or the lock file (PGlite's version) is newer.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const stamp = join(root, 'dist', '.tsbuildinfo')
const seed = join(root, 'dist', 'embedded-seed')

/** The newest modification time under `dir`, in milliseconds. */
function newest (dir) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

/**
 * What `npm start` runs: dist/bundle/server.js and the embedded database's thread, each one file of
 * our code and its dependencies (plus chunks loaded when needed), from tsc's output. Loaded module by
 * module (~1,300 in all, TypeBox ~370 of them and 210 ms to import), they kept the HTTP thread ~1.4 s
 * in Node's module loader, of an embedded start of ~2.3 s; bundled, ~0.5 s (issue 21). dist/bundle sits as deep
 * as dist/db, so the paths our modules build from import.meta.url (the migrations, the seed) hold.
 * Left outside, loaded from node_modules as they are: native addons, and packages that read their
 * own files (PGlite's WASM, Swagger UI's pages).
 */
async function bundle () {
  const { build } = await import('esbuild')
  const out = join(root, 'dist', 'bundle')
  rmSync(out, { recursive: true, force: true })
  await build({
    entryPoints: [join(root, 'dist', 'server.js'), join(root, 'dist', 'db', 'embedded-worker.js')],
    outdir: out,
    entryNames: '[name]',
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true, // a dynamic import stays one: PostgreSQL's driver is not loaded by the embedded server
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: ['@electric-sql/pglite', '@node-rs/argon2', 'fs-native-extensions', '@fastify/swagger-ui', 'pg-native'],
    // CommonJS dependencies call require, which an ES module does not have.
    banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
    sourcemap: true,
    logLevel: 'warning',
  })
}

const force = process.argv.includes('--force')
/** A file's modification time; 0 when it does not exist. */
const modified = (path) => {
  try { return statSync(path).mtimeMs } catch { return 0 }
}

const built = modified(stamp)
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
  await bundle()
  // tsc leaves its build info alone when the output would not change (a file touched, not edited).
  // Stamped with the start: a source saved while tsc ran is newer, and makes the next start build.
  utimesSync(stamp, startedAt, startedAt)
} else if (modified(join(root, 'dist', 'bundle', 'server.js')) === 0) {
  // tsc's output is current but the bundle is gone (deleted, or a dist/ from tsc alone): the start
  // script asks for a build then, and node would otherwise find nothing to run.
  console.error('bundling taskbase...')
  await bundle()
}

const seeded = modified(seed)
if (force || Math.max(newest(join(root, 'src', 'db', 'migrations')), modified(join(root, 'package-lock.json'))) > seeded) {
  if (!force) console.error(seeded === 0 ? 'making the embedded database seed...' : 'migrations changed since the seed was made; making it again...')
  const startedAt = new Date()
  // Made by the server's own code, in a directory beside it, then renamed into place: a seed is
  // whole or absent (a first start without one runs initdb).
  const { openEmbedded } = await import('../dist/db/embedded.js')
  const partial = mkdtempSync(`${seed}.partial-`)
  try {
    const database = await openEmbedded(partial, { seed: null })
    await database.migrate()
    await database.close()
    // Readable by whoever starts the server (mkdtemp makes it private): an image built as root
    // and run as another user would otherwise start with initdb.
    chmodSync(partial, 0o755)
    rmSync(seed, { recursive: true, force: true })
    renameSync(partial, seed)
    utimesSync(seed, startedAt, startedAt)
  } finally {
    rmSync(partial, { recursive: true, force: true })
  }
}
