/** Seeding through the HTTP API, as clients would: accounts first, then their tasks. */
import { randomBytes } from 'node:crypto'
import { call, expectStatus, inParallel, PASSWORD } from './lib.js'
import type { SeededUser } from './scenarios.js'

/** Sign-ups hash a password each (argon2, CPU-bound): a few at a time saturate the server. */
const REGISTER_CONCURRENCY = 8
/** Enough to be quick, few enough not to queue on the embedded database. */
const TASK_CONCURRENCY = 16

const VERBS = ['Write', 'Review', 'Call', 'Email', 'Fix', 'Plan', 'Book', 'Pay', 'Clean', 'Read']
const NOUNS = ['report', 'invoice', 'dentist', 'landlord', 'roadmap', 'budget', 'flight', 'garden', 'slides', 'contract']

export async function seedUsers (baseUrl: string, users: number, tasksPerUser: number): Promise<SeededUser[]> {
  const run = randomBytes(4).toString('hex') // emails stay unique on a reused database
  const seeded = await inParallel(Array.from({ length: users }, (_, i) => i), REGISTER_CONCURRENCY, async (i) => {
    const res = await call(baseUrl, 'POST', '/api/v1/auth/register', undefined,
      { email: `bench-${run}-${i}@example.com`, password: PASSWORD, name: `Bench user ${i}` })
    expectStatus(res, 201, `registering user ${i}`)
    return { token: res.body.accessToken as string, taskIds: [] as string[] }
  })
  // Interleaved over the users, so every account has tasks early and no user's inserts queue together.
  const jobs = Array.from({ length: users * tasksPerUser }, (_, n) => ({ user: seeded[n % users]!, i: Math.floor(n / users) }))
  await inParallel(jobs, TASK_CONCURRENCY, async ({ user, i }) => {
    const res = await call(baseUrl, 'POST', '/api/v1/tasks', user.token, {
      title: `${VERBS[i % VERBS.length]} ${NOUNS[(i * 7) % NOUNS.length]} ${i}`,
      description: `Remember the ${NOUNS[(i * 3) % NOUNS.length]} before the ${NOUNS[(i * 5) % NOUNS.length]}.`,
    })
    expectStatus(res, 201, `creating task ${i}`)
    user.taskIds.push(res.body.id as string)
  })
  return seeded
}
