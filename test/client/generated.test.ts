import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { generateTypes, typesFile } from '../../scripts/openapi-types.js'

describe('the committed types of the client', () => {
  it('are what the routes generate now: a change to /openapi.json fails here until `npm run generate:client`', async () => {
    // CRLF: a Windows checkout may convert the committed file; the types are the same.
    const committed = (await readFile(typesFile, 'utf8')).replaceAll('\r\n', '\n')
    const generated = await generateTypes()
    const committedLines = committed.split('\n')
    const generatedLines = generated.split('\n')
    const first = generatedLines.findIndex((line, i) => line !== committedLines[i])
    // Not toBe: a diff of a 200 KB file buries the fix.
    expect(committed === generated, 'packages/client/src/openapi.ts does not match /openapi.json ' +
      `(line ${first + 1}: expected ${JSON.stringify(generatedLines[first])}, found ${JSON.stringify(committedLines[first])}): ` +
      'run `npm run generate:client` and commit the file').toBe(true)
  }, 60_000) // the app boots on an embedded database, and openapi-typescript loads the compiler
})
