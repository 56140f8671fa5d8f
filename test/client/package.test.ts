// What a front-end developer does with the client: pack it, install the tarball in a project of their
// own, and call a live taskbase with it; and the README's example, run as shown. Child processes run
// asynchronously: the server they call lives in this process.
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, PASSWORD, testDatabases, uniqueEmail, type TestApp } from '../helpers.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
/** Packing compiles the client; installing and type-checking take seconds more on a busy machine. */
const SLOW = 120_000

interface Ran { code: number | null, stdout: string, stderr: string }

/** Runs a command to its end; never rejects, so a failure's output reaches the assertion. */
const run = (file: string, args: string[], cwd: string): Promise<Ran> => new Promise((resolve) => {
  execFile(file, args, { cwd, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
    resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr })
  })
})
const succeeded = (ran: Ran, what: string) => expect(ran.code, `${what} failed:\n${ran.stderr}\n${ran.stdout}`).toBe(0)

/** The packages a tree installs with `name` (transitively), read off the root's lock file. */
function withDependencies (name: string, lock: { packages: Record<string, { dependencies?: Record<string, string> }> }): string[] {
  const found = new Set<string>()
  const visit = (dependency: string) => {
    if (found.has(dependency)) return
    found.add(dependency)
    for (const next of Object.keys(lock.packages[`node_modules/${dependency}`]?.dependencies ?? {})) visit(next)
  }
  visit(name)
  return [...found]
}

/** The fenced code block of the README's section "The typed client" that is TypeScript. */
function readmeExample (): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.split(/^## /m).find((part) => part.startsWith('The typed client\n'))
  const block = section?.match(/^```ts\n([\s\S]*?)^```$/m)?.[1]
  if (block === undefined) throw new Error('README.md: no ```ts block under "## The typed client"')
  return block
}

describe.each(testDatabases.filter((target) => target.name === 'pglite'))('the client package, against a live taskbase on $name', (target) => {
  let t: TestApp
  let baseUrl: string
  const temporary: string[] = []
  const temporaryDir = (parent: string, prefix: string) => {
    mkdirSync(parent, { recursive: true })
    const dir = mkdtempSync(join(parent, prefix))
    temporary.push(dir)
    return dir
  }

  beforeAll(async () => {
    t = await buildTestApp(target)
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    for (const dir of temporary) rmSync(dir, { recursive: true, force: true })
    await t?.close()
  })

  /** The user's tasks, by title, as the server has them. */
  async function tasksOf (email: string) {
    const login = await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: PASSWORD } })
    expect(login.statusCode).toBe(200)
    const headers = { authorization: `Bearer ${login.json().accessToken}` }
    const list = await t.inject({ url: '/api/v1/tasks?sort=position', headers })
    return list.json().items as Array<{ title: string, completed: boolean, version: number, projectId: string | null }>
  }

  it('packs into a tarball that a front end installs without the server, and calls taskbase with it', async () => {
    const workspace = temporaryDir(tmpdir(), 'taskbase-front-end-')
    const packed = await run('npm', ['pack', '-w', '@taskbase/client', '--pack-destination', workspace, '--json'], root)
    succeeded(packed, 'npm pack -w @taskbase/client')
    const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string, files: Array<{ path: string }> }]
    const paths = files.map((file) => file.path)
    expect(paths).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/openapi.d.ts']))
    expect(paths.filter((path) => !path.startsWith('dist/') && !['package.json', 'README.md'].includes(path))).toEqual([])

    const frontEnd = join(workspace, 'front-end')
    mkdirSync(frontEnd)
    writeFileSync(join(frontEnd, 'package.json'), JSON.stringify({ name: 'front-end', private: true, type: 'module' }))
    succeeded(await run('npm', ['install', join(workspace, filename), '--prefer-offline', '--no-audit', '--no-fund'], frontEnd), 'npm install <tarball>')

    const installed = Object.keys((JSON.parse(readFileSync(join(frontEnd, 'package-lock.json'), 'utf8')) as { packages: object }).packages)
      .filter((path) => path !== '').map((path) => path.replace(/^.*node_modules\//, '')).sort()
    const rootLock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'))
    expect(installed).toEqual(['@taskbase/client', ...withDependencies('openapi-fetch', rootLock)].sort())
    for (const server of ['fastify', 'pg', '@electric-sql/pglite', '@node-rs/argon2', 'drizzle-orm']) expect(installed).not.toContain(server)

    // Typed as a Vite or Next project resolves it (the `types` condition of `exports`), the
    // declarations included; the README's example stands in for the front end's code.
    writeFileSync(join(frontEnd, 'example.ts'), readmeExample())
    writeFileSync(join(frontEnd, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM'], types: [], strict: true, noEmit: true, skipLibCheck: false },
      files: ['example.ts'],
    }))
    succeeded(await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', frontEnd], frontEnd), 'tsc in the front end')

    const email = uniqueEmail('front-end')
    writeFileSync(join(frontEnd, 'call.mjs'), `
      import { createClient } from '@taskbase/client'
      const tb = createClient({ baseUrl: ${JSON.stringify(baseUrl)} })
      await tb.auth.register({ email: ${JSON.stringify(email)}, password: ${JSON.stringify(PASSWORD)} })
      const task = await tb.tasks.create({ title: 'Installed from a tarball' })
      await tb.tasks.update(task.id, { completed: true }, { ifMatch: task })
    `)
    succeeded(await run(process.execPath, ['call.mjs'], frontEnd), 'node call.mjs in the front end')
    expect(await tasksOf(email)).toEqual([expect.objectContaining({ title: 'Installed from a tarball', completed: true })])
  }, SLOW)

  it("runs the README's example as shown, and the task it completes is completed", async () => {
    const example = readmeExample()
    // The one change: the address of this test's server.
    const shownUrl = 'http://127.0.0.1:3000'
    expect(example.split(shownUrl)).toHaveLength(2)
    // Inside the checkout, where `@taskbase/client` is the workspace that `npm install` built.
    const dir = temporaryDir(join(root, 'node_modules', '.cache', 'taskbase'), 'readme-example-')
    writeFileSync(join(dir, 'example.mjs'), example.replace(shownUrl, baseUrl))

    const ran = await run(process.execPath, ['example.mjs'], dir)
    succeeded(ran, "the README's example")
    expect(ran.stderr).toBe('')
    expect(ran.stdout).not.toContain('changed on another device') // the 412 branch: the move's version was not used

    const tasks = await tasksOf('ada@example.com')
    expect(tasks.map(({ title, completed }) => ({ title, completed }))).toEqual([
      { title: 'Make the slides', completed: true }, // moved first, then completed
      { title: 'Write the report', completed: false },
    ])
    expect(tasks[0]!.version).toBe(3) // created, moved, completed
  }, SLOW)
})
