-- Trigram indexes serve the case-insensitive task search (`q`). Managed PostgreSQL services
-- (Neon, RDS, Cloud SQL) allow pg_trgm for the database owner.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
