import { Migration } from '@mikro-orm/migrations';

export class Migration20261201003830_event_outbox extends Migration {

  override name = 'Migration20261201003830_event_outbox';

  override up(): void | Promise<void> {
    // No event may be stored between the backfill and the column's removal (an API process of the
    // previous version, during a rolling deploy): it would have no outbox entry.
    this.addSql(`lock table "events" in access exclusive mode;`);
    this.addSql(`create table "event_outbox" ("event_id" uuid not null, primary key ("event_id"));`);
    // Events the stream has not acknowledged yet keep their place in the outbox.
    this.addSql(`insert into "event_outbox" ("event_id") select "id" from "events" where "published_at" is null;`);

    this.addSql(`drop index "events_unpublished_index";`);
    this.addSql(`alter table "events" drop column "published_at";`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "events" add "published_at" timestamptz(6) null;`);
    this.addSql(`update "events" set "published_at" = "created_at" where "id" not in (select "event_id" from "event_outbox");`);
    this.addSql(`create index "events_unpublished_index" on "events" ("created_at") where published_at IS NULL;`);
    this.addSql(`drop table if exists "event_outbox" cascade;`);
  }

}
