import { Migration } from '@mikro-orm/migrations';

export class Migration20261202142602_tenant_requests_per_second extends Migration {

  override name = 'Migration20261202142602_tenant_requests_per_second';

  override up(): void | Promise<void> {
    this.addSql(`alter table "tenants" add "requests_per_second" int null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "tenants" drop column "requests_per_second";`);
  }

}
