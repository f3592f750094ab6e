import { Migration } from '@mikro-orm/migrations';

export class Migration20261203121207_event_traceparent extends Migration {

  override name = 'Migration20261203121207_event_traceparent';

  override up(): void | Promise<void> {
    this.addSql(`alter table "events" add "traceparent" varchar(55) null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "events" drop column "traceparent";`);
  }

}
