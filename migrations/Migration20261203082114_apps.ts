import { Migration } from '@mikro-orm/migrations';

export class Migration20261203082114_apps extends Migration {

  override name = 'Migration20261203082114_apps';

  override up(): void | Promise<void> {
    this.addSql(`create table "apps" ("id" uuid not null, "key" varchar(100) not null, "name" varchar(255) not null, "description" varchar(1000) null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "apps" add constraint "apps_key_unique" unique ("key");`);
    this.addSql(`create index "apps_created_at_id_index" on "apps" ("created_at", "id");`);

    this.addSql(`create table "app_installations" ("id" uuid not null, "tenant_id" uuid not null, "app_id" uuid not null, "version_id" uuid not null, "token_id" uuid not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "app_installations_tenant_created_at_id_index" on "app_installations" ("tenant_id", "created_at", "id");`);
    this.addSql(`alter table "app_installations" add constraint "app_installations_tenant_app_unique" unique ("tenant_id", "app_id");`);

    this.addSql(`create table "app_versions" ("id" uuid not null, "app_id" uuid not null, "version" varchar(50) not null, "manifest" jsonb not null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "app_versions" add constraint "app_versions_app_version_unique" unique ("app_id", "version");`);

    this.addSql(`alter table "api_tokens" add "data_scopes" jsonb null, add "app_installation_id" uuid null;`);

    this.addSql(`alter table "event_types" add "field_scopes" jsonb null;`);

    this.addSql(`alter table "webhooks" add "app_installation_id" uuid null, add "manifest_key" varchar(100) null, add "data_scopes" jsonb null;`);
    this.addSql(`alter table "webhooks" add constraint "webhooks_app_installation_key_unique" unique ("app_installation_id", "manifest_key");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "apps" cascade;`);
    this.addSql(`drop table if exists "app_installations" cascade;`);
    this.addSql(`drop table if exists "app_versions" cascade;`);

    this.addSql(`alter table "api_tokens" drop column "data_scopes", drop column "app_installation_id";`);

    this.addSql(`alter table "event_types" drop column "field_scopes";`);

    this.addSql(`alter table "webhooks" drop constraint "webhooks_app_installation_key_unique";`);
    this.addSql(`alter table "webhooks" drop column "app_installation_id", drop column "manifest_key", drop column "data_scopes";`);
  }

}
