import { Migration } from '@mikro-orm/migrations';

export class Migration20261123060206_retention_indexes extends Migration {

  override name = 'Migration20261123060206_retention_indexes';

  override up(): void | Promise<void> {
    this.addSql(`create index "deliveries_settled_index" on "deliveries" ("updated_at") where "status" in ('SUCCEEDED', 'FAILED');`);

    this.addSql(`create index "events_dispatched_index" on "events" ("created_at") where "dispatched_at" is not null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "deliveries_settled_index";`);

    this.addSql(`drop index "events_dispatched_index";`);
  }

}
