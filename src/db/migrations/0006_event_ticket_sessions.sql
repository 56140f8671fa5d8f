ALTER TABLE "event_tickets" ADD COLUMN "session_id" uuid;--> statement-breakpoint
ALTER TABLE "event_tickets" ADD COLUMN "token_expires_at" timestamp (3) with time zone;