import { Migration } from '@mikro-orm/migrations';

export class Migration20261202181455_tenant_suspension_attempt_outbox extends Migration {

  override name = 'Migration20261202181455_tenant_suspension_attempt_outbox';

  override up(): void | Promise<void> {
    this.addSql(`create table "attempt_outbox" ("attempt_id" uuid not null, "created_at" timestamptz not null, primary key ("attempt_id"));`);
    this.addSql(`create index "attempt_outbox_created_at_index" on "attempt_outbox" ("created_at");`);

    this.addSql(`create index "deliveries_paused_index" on "deliveries" ("tenant_id", "id") where "status" = 'PAUSED';`);

    this.addSql(`alter table "tenants" add "suspended_at" timestamptz null, add "suspended_reason" varchar(500) null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "attempt_outbox" cascade;`);

    this.addSql(`drop index "deliveries_paused_index";`);

    this.addSql(`alter table "tenants" drop column "suspended_at", drop column "suspended_reason";`);
  }

}
