-- Reminders (issue 19). A task's reminders are one jsonb array, as the API shows them. Their pending
-- firings are rows of `jobs`, the durable table of work due later (db/schema.ts), kept in step with
-- the task by the trigger below in every transaction that writes the task, whatever route wrote it.
-- A firing is a row of reminder_changes, stamped with the user's next change seq: the change log.
CREATE TABLE "jobs" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "jobs_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"kind" text NOT NULL,
	"user_id" uuid NOT NULL,
	"task_id" uuid,
	"reminder_id" uuid,
	"occurrence" timestamp (3) with time zone,
	"payload" jsonb,
	"run_at" timestamp (3) with time zone NOT NULL,
	"lease_until" timestamp (3) with time zone,
	"lease_token" uuid,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "reminder_changes" (
	"user_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"op" text NOT NULL,
	"task_id" uuid NOT NULL,
	"reminder_id" uuid NOT NULL,
	"occurrence" timestamp (3) with time zone,
	"fire_at" timestamp (3) with time zone NOT NULL,
	"at" timestamp (3) with time zone NOT NULL,
	"title" text NOT NULL,
	CONSTRAINT "reminder_changes_user_id_seq_pk" PRIMARY KEY("user_id","seq")
);
--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "reminders" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reminder_changes" ADD CONSTRAINT "reminder_changes_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "jobs_run_at_idx" ON "jobs" USING btree ("run_at");--> statement-breakpoint
CREATE INDEX "jobs_lease_idx" ON "jobs" USING btree ("lease_until") WHERE "jobs"."lease_until" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_task_reminder_key" ON "jobs" USING btree ("task_id","reminder_id");--> statement-breakpoint
CREATE INDEX "jobs_user_idx" ON "jobs" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "reminder_changes_at_idx" ON "reminder_changes" USING btree ("at");--> statement-breakpoint
-- The firings a task wants: none while it is completed; each reminder at its `at`, or its offset from
-- dueAt (none without one); only those still ahead. A pending firing that is still wanted, at the same
-- time for the same occurrence, is kept (it may be overdue by a moment, about to fire); the others go.
CREATE OR REPLACE FUNCTION taskbase_schedule_reminders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM jobs j WHERE j.task_id = NEW.id AND NOT EXISTS (
    SELECT 1 FROM jsonb_array_elements(NEW.reminders) r
    WHERE NOT NEW.completed AND (r->>'id')::uuid = j.reminder_id AND j.occurrence IS NOT DISTINCT FROM NEW.due_at
      AND j.run_at = CASE WHEN r ? 'at' THEN (r->>'at')::timestamptz
                          ELSE NEW.due_at + (r->>'offsetMinutes')::int * interval '1 minute' END);
  INSERT INTO jobs (kind, user_id, task_id, reminder_id, occurrence, run_at)
  SELECT 'reminder', NEW.user_id, NEW.id, w.id, NEW.due_at, w.run_at FROM (
    SELECT (r->>'id')::uuid AS id, CASE WHEN r ? 'at' THEN (r->>'at')::timestamptz
                                        ELSE NEW.due_at + (r->>'offsetMinutes')::int * interval '1 minute' END AS run_at
    FROM jsonb_array_elements(NEW.reminders) r WHERE NOT NEW.completed
  ) w WHERE w.run_at > now()
  ON CONFLICT (task_id, reminder_id) DO NOTHING;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER tasks_schedule_reminders AFTER INSERT ON tasks
  FOR EACH ROW WHEN (NEW.reminders <> '[]'::jsonb) EXECUTE FUNCTION taskbase_schedule_reminders();--> statement-breakpoint
CREATE TRIGGER tasks_reschedule_reminders AFTER UPDATE OF due_at, completed, reminders ON tasks
  FOR EACH ROW WHEN ((OLD.reminders <> '[]'::jsonb OR NEW.reminders <> '[]'::jsonb)
    AND (OLD.due_at IS DISTINCT FROM NEW.due_at OR OLD.completed <> NEW.completed OR OLD.reminders <> NEW.reminders))
  EXECUTE FUNCTION taskbase_schedule_reminders();--> statement-breakpoint
CREATE OR REPLACE FUNCTION taskbase_stamp_reminder_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.seq := taskbase_next_seq(NEW.user_id, 0);
  -- No user: the user is gone, and so is the change.
  IF NEW.seq IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END
$$;--> statement-breakpoint
CREATE TRIGGER reminder_changes_stamp BEFORE INSERT ON reminder_changes
  FOR EACH ROW EXECUTE FUNCTION taskbase_stamp_reminder_change();--> statement-breakpoint
CREATE TRIGGER reminder_changes_flush AFTER INSERT ON reminder_changes
  FOR EACH STATEMENT WHEN (current_setting('taskbase.changes', true) LIKE '%,dirty')
  EXECUTE FUNCTION taskbase_flush_changes_trigger();--> statement-breakpoint
-- A create's stored answer (Idempotency-Key) replays as it was: one from before this lacks the
-- `reminders` every task now has (as 0015 did for `recurrence`).
UPDATE idempotency_keys SET response_body = response_body || '{"reminders": []}'::jsonb
WHERE response_status = 201 AND response_body ? 'recurrence' AND NOT (response_body ? 'reminders');