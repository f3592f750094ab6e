import { Migration } from '@mikro-orm/migrations';

export class Migration20261202182206_audit_checkpoints extends Migration {

  override name = 'Migration20261202182206_audit_checkpoints';

  override up(): void | Promise<void> {
    this.addSql(`create table "audit_checkpoints" ("tenant_id" uuid not null, "sequence" bigint not null, "hash" varchar(64) not null, "previous_mac" varchar(64) not null, "mac" varchar(64) not null, "created_at" timestamptz not null, primary key ("tenant_id", "sequence"));`);
    this.addSql(`alter table "audit_checkpoints" add constraint "audit_checkpoints_tenant_previous_mac_unique" unique ("tenant_id", "previous_mac");`);

    this.addSql(`create or replace function "audit_checkpoints_append_only_fn"() returns trigger as \$\$ begin raise exception 'audit_checkpoints is append-only: % refused', tg_op using errcode = 'insufficient_privilege'; end; \$\$ language plpgsql;`);
    this.addSql(`create trigger "append_only" BEFORE UPDATE OR DELETE on "audit_checkpoints" for each ROW execute function "audit_checkpoints_append_only_fn"();`);
    // Statement triggers are invisible to schema introspection, so this one is kept by hand.
    this.addSql(`create or replace function "audit_checkpoints_no_truncate_fn"() returns trigger as \$\$ begin raise exception 'audit_checkpoints is append-only: TRUNCATE refused' using errcode = 'insufficient_privilege'; end; \$\$ language plpgsql;`);
    this.addSql(`create trigger "no_truncate" before truncate on "audit_checkpoints" for each statement execute function "audit_checkpoints_no_truncate_fn"();`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop trigger if exists "append_only" on "audit_checkpoints";`);
    this.addSql(`drop function if exists "audit_checkpoints_append_only_fn"();`);
    this.addSql(`drop trigger if exists "no_truncate" on "audit_checkpoints";`);
    this.addSql(`drop function if exists "audit_checkpoints_no_truncate_fn"();`);
    this.addSql(`drop table if exists "audit_checkpoints" cascade;`);
  }

}
