import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    /** A directory of this run where test/faults/support.ts keeps its template data directory. */
    embeddedTemplateRoot: string
  }
}

/**
 * Before any test: the server is built when a source is newer than the last build, as `npm start`
 * does (scripts/build-if-stale.mjs, a few seconds; nothing when it is fresh). The tests that run
 * real server processes start `node dist/server.js`, as an operator does: from source through tsx,
 * every start cost 1.8 s more (4.6 s against 2.8 s for a restart), over some forty starts a run.
 */
export default function setup (project: TestProject): () => void {
  const built = spawnSync(process.execPath, ['scripts/build-if-stale.mjs'], { stdio: 'inherit' })
  if (built.status !== 0) throw new Error('building the server for the process tests failed (node scripts/build-if-stale.mjs)')
  // Empty until a test first needs the template (seededDataDir), so a run that needs none builds none.
  const root = mkdtempSync(join(tmpdir(), 'taskbase-template-'))
  project.provide('embeddedTemplateRoot', root)
  return () => rmSync(root, { recursive: true, force: true })
}
