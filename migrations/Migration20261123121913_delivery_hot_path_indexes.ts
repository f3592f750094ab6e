import { Migration } from '@mikro-orm/migrations';

export class Migration20261123121913_delivery_hot_path_indexes extends Migration {

  override name = 'Migration20261123121913_delivery_hot_path_indexes';

  override up(): void | Promise<void> {
    this.addSql(`drop index "deliveries_settled_index";`);
    this.addSql(`drop index "deliveries_tenant_status_index";`);
    this.addSql(`create index "deliveries_failed_index" on "deliveries" ("tenant_id", "created_at", "id") where "status" = 'FAILED';`);
    // Same name, new predicate: schema diffing compares index names, so this pair is kept by hand.
    this.addSql(`drop index "deliveries_due_index";`);
    this.addSql(`create index "deliveries_due_index" on "deliveries" ("next_attempt_at") where "next_attempt_at" is not null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "deliveries_failed_index";`);
    this.addSql(`drop index "deliveries_due_index";`);
    this.addSql(`create index "deliveries_due_index" on "deliveries" ("next_attempt_at") where "status" = 'RETRYING';`);
    this.addSql(`create index "deliveries_settled_index" on "deliveries" ("updated_at") where (status)::text = ANY ((ARRAY['SUCCEEDED'::character varying, 'FAILED'::character varying])::text[]);`);
    this.addSql(`create index "deliveries_tenant_status_index" on "deliveries" ("tenant_id", "status", "created_at", "id");`);
  }

}
