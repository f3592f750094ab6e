import { Migration } from '@mikro-orm/migrations';

export class Migration20261123045854_tenants_tokens_audit extends Migration {
  override name = 'Migration20261123045854_tenants_tokens_audit';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "api_tokens" ("id" uuid not null, "tenant_id" uuid not null, "name" varchar(255) not null, "token_hash" varchar(64) not null, "prefix" varchar(16) not null, "scopes" jsonb not null, "client" varchar(16) not null, "expires_at" timestamptz null, "last_used_at" timestamptz null, "revoked_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "api_tokens" add constraint "api_tokens_token_hash_unique" unique ("token_hash");`,
    );
    this.addSql(
      `create index "api_tokens_tenant_created_at_id_index" on "api_tokens" ("tenant_id", "created_at", "id");`,
    );

    this.addSql(
      `create table "audit_chain_heads" ("tenant_id" uuid not null, "sequence" bigint not null, "hash" varchar(64) not null, primary key ("tenant_id"));`,
    );

    this.addSql(
      `create table "audit_logs" ("id" uuid not null, "tenant_id" uuid not null, "sequence" bigint not null, "action" varchar(100) not null, "executor" jsonb not null, "related" jsonb null, "relation_name" varchar(100) null, "relation_id" varchar(255) null, "metadata" jsonb not null, "ip" varchar(64) null, "user_agent" varchar(512) null, "request_id" varchar(64) null, "created_at" timestamptz not null, "previous_hash" varchar(64) not null, "hash" varchar(64) not null, primary key ("id"));`,
    );
    this.addSql(
      `create index "audit_logs_tenant_created_at_id_index" on "audit_logs" ("tenant_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "audit_logs_tenant_action_index" on "audit_logs" ("tenant_id", "action", "created_at", "id");`,
    );
    this.addSql(
      `create index "audit_logs_tenant_relation_index" on "audit_logs" ("tenant_id", "relation_name", "relation_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "audit_logs_tenant_executor_index" on "audit_logs" ("tenant_id", (executor->>'id'), "created_at", "id");`,
    );
    this.addSql(
      `alter table "audit_logs" add constraint "audit_logs_tenant_sequence_unique" unique ("tenant_id", "sequence");`,
    );

    this.addSql(
      `create table "audit_outbox" ("audit_log_id" uuid not null, "tenant_id" uuid not null, "created_at" timestamptz not null, primary key ("audit_log_id"));`,
    );
    this.addSql(`create index "audit_outbox_created_at_index" on "audit_outbox" ("created_at");`);

    this.addSql(
      `create table "tenants" ("id" uuid not null, "name" varchar(255) not null, "max_webhooks" int not null default 100, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );

    this.addSql(
      `create or replace function "audit_logs_append_only_fn"() returns trigger as \$\$ begin raise exception 'audit_logs is append-only: % refused', tg_op using errcode = 'insufficient_privilege'; end; \$\$ language plpgsql;`,
    );
    this.addSql(
      `create trigger "append_only" BEFORE UPDATE OR DELETE on "audit_logs" for each ROW execute function "audit_logs_append_only_fn"();`,
    );
    // Statement triggers are invisible to schema introspection, so this one is kept by hand.
    this.addSql(
      `create or replace function "audit_logs_no_truncate_fn"() returns trigger as \$\$ begin raise exception 'audit_logs is append-only: TRUNCATE refused' using errcode = 'insufficient_privilege'; end; \$\$ language plpgsql;`,
    );
    this.addSql(
      `create trigger "no_truncate" before truncate on "audit_logs" for each statement execute function "audit_logs_no_truncate_fn"();`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "api_tokens" cascade;`);
    this.addSql(`drop table if exists "audit_chain_heads" cascade;`);
    this.addSql(`drop trigger if exists "append_only" on "audit_logs";`);
    this.addSql(`drop function if exists "audit_logs_append_only_fn"();`);
    this.addSql(`drop trigger if exists "no_truncate" on "audit_logs";`);
    this.addSql(`drop function if exists "audit_logs_no_truncate_fn"();`);
    this.addSql(`drop table if exists "audit_logs" cascade;`);
    this.addSql(`drop table if exists "audit_outbox" cascade;`);
    this.addSql(`drop table if exists "tenants" cascade;`);
  }
}
