// The README's MCP client example, run as shown (in a child process: the server it calls lives in
// this one), against a live taskbase.
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, testDatabases, type TestApp } from '../helpers.js'
import { listening } from './support.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** The ```js block of the README's section "Agents (MCP)". */
function readmeExample (): string {
  const section = readFileSync(join(root, 'README.md'), 'utf8').split(/^## /m).find((part) => part.startsWith('Agents (MCP)\n'))
  const block = section?.match(/^```js\n([\s\S]*?)^```$/m)?.[1]
  if (block === undefined) throw new Error('README.md: no ```js block under "## Agents (MCP)"')
  return block
}

describe.each(testDatabases)('the README\'s MCP example on $name', (target) => {
  let t: TestApp
  let base: string
  let dir: string
  beforeAll(async () => {
    t = await buildTestApp(target)
    base = await listening(t)
    // Inside the checkout, where @modelcontextprotocol/sdk resolves as in a project that installed it.
    const cache = join(root, 'node_modules', '.cache', 'taskbase')
    mkdirSync(cache, { recursive: true })
    dir = mkdtempSync(join(cache, 'readme-mcp-'))
  })
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true })
    await t.close()
  })

  it('runs as shown, adding the task once, and prints what its comments say', async () => {
    const account = await t.signUp()
    const example = readmeExample()
    const shownUrl = 'http://127.0.0.1:3000'
    expect(example.split(shownUrl)).toHaveLength(2) // the one change: this test's server
    writeFileSync(join(dir, 'example.mjs'), example.replace(shownUrl, base))
    const run = (): Promise<{ code: number, stdout: string, stderr: string }> => new Promise((resolve) => {
      execFile(process.execPath, ['example.mjs'], { cwd: dir, timeout: 30_000, env: { PATH: process.env.PATH, TASKBASE_TOKEN: account.accessToken } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
    })
    for (let i = 0; i < 2; i++) { // twice: the idempotency key makes the second run add nothing
      const ran = await run()
      expect(ran.code, ran.stderr).toBe(0)
      expect(ran.stderr).toBe('')
      expect(ran.stdout.split('\n')).toEqual(['Milk', '9 1', expect.stringMatching(/^true Refused \(400\): The arguments are not valid \[id: must be a UUID/), ''])
    }
    const tasks = (await t.inject({ url: '/api/v1/tasks', headers: account.headers })).json().items
    expect(tasks.map((task: { title: string, tags: string[] }) => [task.title, task.tags])).toEqual([['Milk', ['shopping']]])
  })
})
