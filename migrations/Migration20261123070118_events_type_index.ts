import { Migration } from '@mikro-orm/migrations';

export class Migration20261123070118_events_type_index extends Migration {

  override name = 'Migration20261123070118_events_type_index';

  override up(): void | Promise<void> {
    this.addSql(`create index "events_tenant_type_index" on "events" ("tenant_id", "type", "created_at", "id");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "events_tenant_type_index";`);
  }

}
