import { Migration } from '@mikro-orm/migrations';

export class Migration20261202221714_inbound_webhooks extends Migration {

  override name = 'Migration20261202221714_inbound_webhooks';

  override up(): void | Promise<void> {
    this.addSql(`create table "inbound_outbox" ("request_id" uuid not null, primary key ("request_id"));`);

    this.addSql(`create table "inbound_requests" ("id" uuid not null, "tenant_id" uuid not null, "source_id" uuid not null, "method" varchar(16) not null, "path" varchar(2048) not null, "query" varchar(2048) null, "headers" jsonb not null, "content_type" varchar(255) null, "client_ip" varchar(64) null, "body" bytea null, "body_bytes" int not null, "body_sha256" varchar(64) null, "outcome" varchar(24) not null, "status_code" int not null, "reason" varchar(1000) null, "verification" varchar(16) not null, "verification_detail" varchar(1000) null, "parse_status" varchar(16) not null, "parse_error" varchar(1000) null, "idempotency_key" varchar(255) null, "dedupe_key" varchar(255) null, "duplicate_of" uuid null, "replay_of" uuid null, "event_id" uuid null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "inbound_requests_tenant_created_at_id_index" on "inbound_requests" ("tenant_id", "created_at", "id");`);
    this.addSql(`create index "inbound_requests_tenant_source_index" on "inbound_requests" ("tenant_id", "source_id", "created_at", "id");`);
    this.addSql(`alter table "inbound_requests" add constraint "inbound_requests_source_dedupe_key_unique" unique ("source_id", "dedupe_key");`);

    this.addSql(`create table "inbound_sources" ("id" uuid not null, "tenant_id" uuid not null, "name" varchar(255) not null, "description" varchar(1000) null, "status" varchar(16) not null, "format" varchar(8) not null, "sample_body" text null, "verification" jsonb not null, "secrets" jsonb not null, "event_type" jsonb not null, "idempotency" jsonb null, "max_bytes" int not null, "allowed_methods" text[] not null, "allowed_cidrs" text[] not null, "requests_per_second" int null, "url_token_hash" varchar(64) not null, "url_token" text not null, "previous_url_token_hash" varchar(64) null, "previous_url_token_expires_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "inbound_sources_tenant_created_at_id_index" on "inbound_sources" ("tenant_id", "created_at", "id");`);
    this.addSql(`create index "inbound_sources_previous_url_token_index" on "inbound_sources" ("previous_url_token_hash") where "previous_url_token_hash" is not null;`);
    this.addSql(`alter table "inbound_sources" add constraint "inbound_sources_url_token_hash_unique" unique ("url_token_hash");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "inbound_outbox" cascade;`);
    this.addSql(`drop table if exists "inbound_requests" cascade;`);
    this.addSql(`drop table if exists "inbound_sources" cascade;`);
  }

}
