import { defineConfig } from 'drizzle-kit'

// Migrations are generated from src/db/schema.ts (`npm run db:generate`) and committed; the server
// runs them on start. No database connection is needed to generate.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './src/db/migrations',
})
