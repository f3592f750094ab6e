import { Migration } from '@mikro-orm/migrations';

export class Migration20261203074732_flows extends Migration {

  override name = 'Migration20261203074732_flows';

  override up(): void | Promise<void> {
    this.addSql(`create table "flows" ("id" uuid not null, "tenant_id" uuid not null, "name" varchar(255) not null, "description" varchar(1000) null, "status" varchar(16) not null, "deployed_at" timestamptz null, "event_type" jsonb not null, "filter" jsonb null, "mapping" jsonb null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "flows_tenant_created_at_id_index" on "flows" ("tenant_id", "created_at", "id");`);

    this.addSql(`alter table "inbound_sources" add "flow_id" uuid null;`);
    this.addSql(`alter table "inbound_sources" alter column "event_type" drop not null;`);
    this.addSql(`create index "inbound_sources_flow_index" on "inbound_sources" ("flow_id", "created_at", "id") where "flow_id" is not null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "flows" cascade;`);

    this.addSql(`drop index "inbound_sources_flow_index";`);
    this.addSql(`alter table "inbound_sources" drop column "flow_id";`);
    this.addSql(`alter table "inbound_sources" alter column "event_type" set not null;`);
  }

}
