import { Migration } from '@mikro-orm/migrations';

export class Migration20261123051400_event_type_schema extends Migration {

  override name = 'Migration20261123051400_event_type_schema';

  override up(): void | Promise<void> {
    this.addSql(`alter table "event_types" add "schema" jsonb null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "event_types" drop column "schema";`);
  }

}
