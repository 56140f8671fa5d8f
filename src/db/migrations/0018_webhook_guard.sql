ALTER TABLE "users" ADD COLUMN "webhooks_enabled" boolean DEFAULT false NOT NULL;--> statement-breakpoint
-- Issue 21: a write of a user with no enabled webhook endpoint (the usual user) no longer calls the
-- outbox trigger. 0017 called it for every written row, and its first statement looked for the
-- user's enabled endpoints: a plpgsql call and an index probe, ~9 us of the ~147 us of server time
-- of a single-row insert; what is left is ~2 us (docs/explain.md, "What an insert pays"). The write
-- learns whether its owner has one from the UPDATE of users it makes anyway for its seq, and the
-- outbox triggers' WHEN clauses, evaluated without plpgsql, leave the other writes out.
--
-- users.webhooks_enabled is kept by every write of webhooks (a route, the retries running out, by
-- hand) in that write's transaction, and it updates the user's row: a task write and an endpoint's
-- change take turns on that row lock. A task write that locked it first commits before the change and
-- the outbox saw the endpoints as they were; one that waited for it reads the new flag (the UPDATE
-- returns the row as the change left it) and the outbox's statement, which starts later, the new
-- endpoints. The routes that change endpoints lock the user's row before they touch webhooks
-- (webhooks/queries.ts, webhooks/deliver.ts), as a task write locks it before its outbox inserts
-- events that lock webhooks' keys: the two never wait on each other in opposite orders.

CREATE OR REPLACE FUNCTION taskbase_webhooks_enabled() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  owner uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
  hooked boolean;
BEGIN
  -- No row: the user is being deleted, and their endpoints go with them.
  UPDATE users u SET webhooks_enabled = EXISTS (SELECT 1 FROM webhooks w WHERE w.user_id = owner AND w.enabled)
  WHERE u.id = owner RETURNING u.webhooks_enabled INTO hooked;
  -- taskbase_next_seq reads the flag once per transaction: a write later in this one is queued too.
  -- (Left on after the user's last endpoint went, it only calls the outbox for nothing.)
  IF hooked THEN
    PERFORM set_config('taskbase.hooked', 'on', true);
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER webhooks_added AFTER INSERT ON webhooks
  FOR EACH ROW WHEN (NEW.enabled) EXECUTE FUNCTION taskbase_webhooks_enabled();--> statement-breakpoint
CREATE TRIGGER webhooks_switched AFTER UPDATE OF enabled ON webhooks
  FOR EACH ROW WHEN (OLD.enabled <> NEW.enabled) EXECUTE FUNCTION taskbase_webhooks_enabled();--> statement-breakpoint
CREATE TRIGGER webhooks_removed AFTER DELETE ON webhooks
  FOR EACH ROW WHEN (OLD.enabled) EXECUTE FUNCTION taskbase_webhooks_enabled();--> statement-breakpoint
-- After the triggers: creating them waited for the writes of webhooks under way, and holds off new
-- ones until this commits.
UPDATE users u SET webhooks_enabled = true
WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.user_id = u.id AND w.enabled);--> statement-breakpoint
-- As 0011's, and: once a transaction writes for a user with an enabled endpoint (or gives one an
-- endpoint), the transaction-local setting `taskbase.hooked` is on, and the outbox triggers are
-- called for its rows from then on. The row lock taken here holds until commit, so the flag cannot
-- change while the transaction writes on. A transaction that writes for several users (the reminders
-- of many users firing at once) calls the outbox for the rows of all of them after the first with an
-- endpoint; the outbox finds none for the others' rows. Matching each row's owner against a list of
-- ids spared those calls but cost every insert ~3 us more (a larger WHEN clause is parsed per
-- statement): per row, the outbox's own choice of endpoints is what is exact.
CREATE OR REPLACE FUNCTION taskbase_next_seq(owner uuid, counted integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  state text[] := string_to_array(nullif(current_setting('taskbase.changes', true), ''), ',');
  next_seq bigint;
  hooked boolean;
BEGIN
  IF state IS NOT NULL AND state[1] = owner::text THEN
    -- The owner's row was updated earlier in this transaction, which set taskbase.hooked if they have an endpoint.
    next_seq := state[2]::bigint + 1;
    PERFORM set_config('taskbase.changes', concat_ws(',', owner, next_seq, state[3]::int + counted, 'dirty'), true);
    RETURN next_seq;
  END IF;
  IF state IS NOT NULL THEN
    -- Another user's writes before, in this transaction: theirs are written back first.
    PERFORM taskbase_flush_changes();
  END IF;
  UPDATE users SET change_seq = change_seq + 1, task_count = task_count + counted
  WHERE id = owner RETURNING change_seq, webhooks_enabled INTO next_seq, hooked;
  PERFORM set_config('taskbase.changes', CASE WHEN next_seq IS NULL THEN '' ELSE concat_ws(',', owner, next_seq, 0, 'clean') END, true);
  IF hooked THEN
    PERFORM set_config('taskbase.hooked', 'on', true);
  END IF;
  RETURN next_seq;
END
$$;--> statement-breakpoint
-- As 0017's, without its first look at the user's endpoints: the WHEN clauses below call it only in
-- a transaction that wrote for a user who has an enabled one.
CREATE OR REPLACE FUNCTION taskbase_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  event_type text := TG_ARGV[0];
BEGIN
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
-- Every row's seq was taken (taskbase_next_seq) before its AFTER trigger's WHEN is read: right after
-- the row is written. When the setting was never set in the session it is null, and so is the
-- condition: false.
DROP TRIGGER tasks_webhook_outbox ON tasks;--> statement-breakpoint
CREATE TRIGGER tasks_webhook_outbox AFTER INSERT OR UPDATE ON tasks
  FOR EACH ROW WHEN (current_setting('taskbase.hooked', true) = 'on')
  EXECUTE FUNCTION taskbase_webhook_outbox('task.upsert');--> statement-breakpoint
DROP TRIGGER projects_webhook_outbox ON projects;--> statement-breakpoint
CREATE TRIGGER projects_webhook_outbox AFTER INSERT OR UPDATE ON projects
  FOR EACH ROW WHEN (current_setting('taskbase.hooked', true) = 'on')
  EXECUTE FUNCTION taskbase_webhook_outbox('project.upsert');--> statement-breakpoint
DROP TRIGGER tombstones_webhook_outbox ON tombstones;--> statement-breakpoint
CREATE TRIGGER tombstones_webhook_outbox AFTER INSERT ON tombstones
  FOR EACH ROW WHEN (current_setting('taskbase.hooked', true) = 'on')
  EXECUTE FUNCTION taskbase_webhook_outbox('delete');--> statement-breakpoint
DROP TRIGGER reminder_changes_webhook_outbox ON reminder_changes;--> statement-breakpoint
CREATE TRIGGER reminder_changes_webhook_outbox AFTER INSERT ON reminder_changes
  FOR EACH ROW WHEN (NEW.op = 'fired' AND current_setting('taskbase.hooked', true) = 'on')
  EXECUTE FUNCTION taskbase_webhook_outbox('reminder.fired');
