-- Recurring tasks (issue 18). A task's series is one jsonb value, {rule, timezone, from}, as the API
-- shows it; due_local and occurrence_index say where the series stands (see db/schema.ts). Each
-- completed occurrence leaves a row in task_completions, the task's history, gone with the task.
CREATE TABLE "task_completions" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "task_completions_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"task_id" uuid NOT NULL,
	"occurrence" timestamp (3) with time zone NOT NULL,
	"completed_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "recurrence" jsonb;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "due_local" timestamp(3);--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "occurrence_index" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "task_completions" ADD CONSTRAINT "task_completions_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "task_completions_task_idx" ON "task_completions" USING btree ("task_id","id");