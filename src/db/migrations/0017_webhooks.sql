CREATE TABLE "webhook_deliveries" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "webhook_deliveries_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"webhook_id" uuid NOT NULL,
	"event_id" uuid NOT NULL,
	"type" text NOT NULL,
	"attempt" integer NOT NULL,
	"at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"status" integer,
	"error" text,
	"duration_ms" integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhook_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "webhook_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"event_id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"webhook_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"type" text NOT NULL,
	"seq" bigint,
	"snapshot" jsonb,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhooks" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"url" text NOT NULL,
	"events" text[] NOT NULL,
	"description" text,
	"enabled" boolean DEFAULT true NOT NULL,
	"disabled_reason" text,
	"disabled_at" timestamp (3) with time zone,
	"secret" text NOT NULL,
	"previous_secret" text,
	"previous_secret_until" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"version" integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "webhook_id" uuid;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_webhook_id_webhooks_id_fk" FOREIGN KEY ("webhook_id") REFERENCES "public"."webhooks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_events" ADD CONSTRAINT "webhook_events_webhook_id_webhooks_id_fk" FOREIGN KEY ("webhook_id") REFERENCES "public"."webhooks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "webhook_deliveries_webhook_idx" ON "webhook_deliveries" USING btree ("webhook_id","id");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_at_idx" ON "webhook_deliveries" USING btree ("at");--> statement-breakpoint
CREATE INDEX "webhook_events_webhook_idx" ON "webhook_events" USING btree ("webhook_id","id");--> statement-breakpoint
CREATE INDEX "webhooks_user_idx" ON "webhooks" USING btree ("user_id","created_at","id");--> statement-breakpoint
CREATE INDEX "webhooks_enabled_user_idx" ON "webhooks" USING btree ("user_id") WHERE "webhooks"."enabled";--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_webhook_id_webhooks_id_fk" FOREIGN KEY ("webhook_id") REFERENCES "public"."webhooks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_webhook_key" ON "jobs" USING btree ("webhook_id");--> statement-breakpoint
-- The webhook outbox (issue 20). Each write a user's enabled endpoints listen to leaves one event per
-- endpoint in webhook_events, in the write's own transaction: a task's or a project's insert or
-- update (its row as written), a tombstone (a deletion), a reminder fired. A user without an enabled
-- endpoint pays one probe of a small partial index per written row. Each endpoint with pending
-- events has one `webhook` job (jobs.webhook_id is unique): its holder delivers them in order. A new
-- event on an endpoint whose job is held bumps the job's `gen`, so the holder does not finish the
-- job without it. No NOTIFY here: a NOTIFY in the write serializes every notifying commit through
-- its WAL flush (0007; measured here: ~120 creates/s); the writing process wakes its own scheduler
-- after the commit (webhooks/users.ts), and the others look at the table within a minute.
CREATE OR REPLACE FUNCTION taskbase_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  event_type text := TG_ARGV[0];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.user_id = NEW.user_id AND w.enabled) THEN
    RETURN NULL;
  END IF;
  IF TG_TABLE_NAME = 'tombstones' THEN
    event_type := NEW.entity || '.delete';
  END IF;
  WITH added AS (
    INSERT INTO webhook_events (webhook_id, user_id, type, seq, snapshot)
    SELECT w.id, NEW.user_id, event_type, NEW.seq, to_jsonb(NEW) FROM webhooks w
    WHERE w.user_id = NEW.user_id AND w.enabled AND w.events && ARRAY[event_type, '*']
    ORDER BY w.id
    RETURNING webhook_id
  )
  INSERT INTO jobs AS j (kind, user_id, webhook_id, run_at, payload)
  SELECT 'webhook', NEW.user_id, a.webhook_id, now(), jsonb_build_object('webhookId', a.webhook_id, 'gen', 0) FROM added a
  ON CONFLICT (webhook_id) DO UPDATE SET payload = j.payload || jsonb_build_object('gen', coalesce((j.payload->>'gen')::int, 0) + 1);
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER tasks_webhook_outbox AFTER INSERT OR UPDATE ON tasks
  FOR EACH ROW EXECUTE FUNCTION taskbase_webhook_outbox('task.upsert');--> statement-breakpoint
CREATE TRIGGER projects_webhook_outbox AFTER INSERT OR UPDATE ON projects
  FOR EACH ROW EXECUTE FUNCTION taskbase_webhook_outbox('project.upsert');--> statement-breakpoint
CREATE TRIGGER tombstones_webhook_outbox AFTER INSERT ON tombstones
  FOR EACH ROW EXECUTE FUNCTION taskbase_webhook_outbox('delete');--> statement-breakpoint
CREATE TRIGGER reminder_changes_webhook_outbox AFTER INSERT ON reminder_changes
  FOR EACH ROW WHEN (NEW.op = 'fired') EXECUTE FUNCTION taskbase_webhook_outbox('reminder.fired');
