-- Where the user lives, as an IANA name (checked by the API, not here: PostgreSQL's zone list is not
-- the one the server computes with). The default zone of the user's recurring tasks (issue 18).
ALTER TABLE "users" ADD COLUMN "timezone" text DEFAULT 'UTC' NOT NULL;
