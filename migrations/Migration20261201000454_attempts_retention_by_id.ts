import { Migration } from '@mikro-orm/migrations';

export class Migration20261201000454_attempts_retention_by_id extends Migration {

  override name = 'Migration20261201000454_attempts_retention_by_id';

  override up(): void | Promise<void> {
    this.addSql(`drop index "delivery_attempts_created_at_index";`);
  }

  override down(): void | Promise<void> {
    this.addSql(`create index "delivery_attempts_created_at_index" on "delivery_attempts" ("created_at");`);
  }

}
