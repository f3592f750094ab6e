import { Migration } from '@mikro-orm/migrations';

export class Migration20261123065823_attempt_status extends Migration {

  override name = 'Migration20261123065823_attempt_status';

  override up(): void | Promise<void> {
    // Attempts recorded before this column get the status their outcome implies.
    this.addSql(`alter table "delivery_attempts" add "status" varchar(16);`);
    this.addSql(
      `update "delivery_attempts" a set "status" = case when a."status_code" between 200 and 299 then 'SUCCEEDED' when d."status" = 'FAILED' and a."attempt" = d."attempts" then 'FAILED' else 'RETRYING' end from "deliveries" d where d."id" = a."delivery_id";`,
    );
    this.addSql(`update "delivery_attempts" set "status" = 'FAILED' where "status" is null;`);
    this.addSql(`alter table "delivery_attempts" alter column "status" set not null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "delivery_attempts" drop column "status";`);
  }

}
