import { Migration } from '@mikro-orm/migrations';

export class Migration20261123052732_delivery_pipeline extends Migration {

  override name = 'Migration20261123052732_delivery_pipeline';

  override up(): void | Promise<void> {
    this.addSql(`create table "deliveries" ("id" uuid not null, "tenant_id" uuid not null, "webhook_id" uuid not null, "event_id" uuid not null, "event_type" varchar(255) not null, "status" varchar(16) not null default 'PENDING', "attempts" int not null default 0, "next_attempt_at" timestamptz null, "last_attempt_at" timestamptz null, "last_status_code" int null, "last_error" varchar(1000) null, "succeeded_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "deliveries_tenant_created_at_id_index" on "deliveries" ("tenant_id", "created_at", "id");`);
    this.addSql(`create index "deliveries_tenant_webhook_index" on "deliveries" ("tenant_id", "webhook_id", "created_at", "id");`);
    this.addSql(`create index "deliveries_tenant_status_index" on "deliveries" ("tenant_id", "status", "created_at", "id");`);
    this.addSql(`create index "deliveries_due_index" on "deliveries" ("next_attempt_at") where "status" = 'RETRYING';`);
    this.addSql(`alter table "deliveries" add constraint "deliveries_event_webhook_unique" unique ("event_id", "webhook_id");`);

    this.addSql(`create table "delivery_attempts" ("id" uuid not null, "tenant_id" uuid not null, "delivery_id" uuid not null, "webhook_id" uuid not null, "attempt" int not null, "url" varchar(2048) not null, "status_code" int null, "response_time_ms" int not null, "response" text null, "error_class" varchar(16) null, "error" varchar(1000) null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "delivery_attempts_delivery_index" on "delivery_attempts" ("delivery_id", "attempt");`);
    this.addSql(`create index "delivery_attempts_created_at_index" on "delivery_attempts" ("created_at");`);

    this.addSql(`alter table "events" add "dispatched_at" timestamptz null, add "delivery_count" int null;`);

    this.addSql(`alter table "webhooks" add "failing_since" timestamptz null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "deliveries" cascade;`);
    this.addSql(`drop table if exists "delivery_attempts" cascade;`);

    this.addSql(`alter table "events" drop column "dispatched_at", drop column "delivery_count";`);

    this.addSql(`alter table "webhooks" drop column "failing_since";`);
  }

}
