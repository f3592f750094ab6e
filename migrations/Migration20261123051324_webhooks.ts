import { Migration } from '@mikro-orm/migrations';

export class Migration20261123051324_webhooks extends Migration {

  override name = 'Migration20261123051324_webhooks';

  override up(): void | Promise<void> {
    this.addSql(`create table "webhooks" ("id" uuid not null, "tenant_id" uuid not null, "name" varchar(255) null, "url" varchar(2048) not null, "is_active" boolean not null default true, "subscribed_events" text[] not null, "external_id" varchar(255) null, "managed_by" varchar(16) not null, "last_success_at" timestamptz null, "last_failure_at" timestamptz null, "disabled_at" timestamptz null, "disabled_reason" varchar(1000) null, "secret" text not null, "previous_secret" text null, "previous_secret_expires_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "webhooks_tenant_created_at_id_index" on "webhooks" ("tenant_id", "created_at", "id");`);
    this.addSql(`create index "webhooks_subscribed_events_index" on "webhooks" using gin ("subscribed_events");`);
    this.addSql(`alter table "webhooks" add constraint "webhooks_tenant_client_external_id_unique" unique ("tenant_id", "managed_by", "external_id");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "webhooks" cascade;`);
  }

}
