import { Migration } from '@mikro-orm/migrations';

export class Migration20261123043410_initial extends Migration {
  override name = 'Migration20261123043410_initial';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "events" ("id" uuid not null, "tenant_id" uuid not null, "type" varchar(255) not null, "module" varchar(100) null, "model" varchar(100) not null, "action" varchar(100) not null, "current" jsonb null, "previous" jsonb null, "occurred_at" timestamptz not null, "idempotency_key" varchar(255) not null, "published_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(
      `create index "events_tenant_created_at_id_index" on "events" ("tenant_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "events_unpublished_index" on "events" ("created_at") where "published_at" is null;`,
    );
    this.addSql(
      `alter table "events" add constraint "events_tenant_idempotency_key_unique" unique ("tenant_id", "idempotency_key");`,
    );

    this.addSql(
      `create table "event_types" ("name" varchar(255) not null, "group" varchar(100) not null, "description" text null, "deprecated" boolean not null default false, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("name"));`,
    );
    this.addSql(`create index "event_types_group_name_index" on "event_types" ("group", "name");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "events" cascade;`);
    this.addSql(`drop table if exists "event_types" cascade;`);
  }
}
