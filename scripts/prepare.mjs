// The root's `prepare`, run by `npm install` and `npm ci` in the checkout: it builds packages/client,
// so that `taskbase/client` resolves here and a front end can install the folder. An install without
// devDependencies (`npm ci --omit=dev` beside a dist/ built elsewhere) has no TypeScript and no use
// for the client: it is skipped, not failed, or that install would stop here.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
if (!existsSync(tsc)) {
  console.error('TypeScript is not installed (devDependencies omitted): packages/client is not built')
  process.exit(0)
}
const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'packages', 'client')], { stdio: 'inherit' })
process.exit(result.status ?? 1)
