import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';
import { tenantFilter } from '../db/tenant-filter.ts';

/** A webhook an app declares: kept on every version under its key, reconciled on upgrade. */
export interface ManifestWebhook {
  key: string;
  name: string | null;
  url: string;
  events: string[];
}

/** What an app version declares: the data scopes it asks for and the webhooks it wants. */
export interface Manifest {
  scopes: string[];
  webhooks: ManifestWebhook[];
}

/** An application the operator publishes for tenants to install (Flowlu's custom apps). */
export const AppEntity = defineEntity({
  name: 'App',
  tableName: 'apps',
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    /** Its stable name, e.g. `crm-sync`. */
    key: p.string().length(100).unique(),
    name: p.string().length(255),
    description: p.string().length(1000).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  indexes: [{ properties: ['createdAt', 'id'], name: 'apps_created_at_id_index' }],
});
export type App = InferEntity<typeof AppEntity>;

/** One published version of an app: its manifest, checked when published and never changed. */
export const AppVersionEntity = defineEntity({
  name: 'AppVersion',
  tableName: 'app_versions',
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    appId: p.uuid(),
    version: p.string().length(50),
    manifest: p.json<Manifest>(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['appId', 'version'], name: 'app_versions_app_version_unique' }],
});
export type AppVersion = InferEntity<typeof AppVersionEntity>;

/** An app installed on a tenant: the version in force, and the app's token. */
export const AppInstallationEntity = defineEntity({
  name: 'AppInstallation',
  tableName: 'app_installations',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    appId: p.uuid(),
    versionId: p.uuid(),
    tokenId: p.uuid(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  uniques: [{ properties: ['tenantId', 'appId'], name: 'app_installations_tenant_app_unique' }],
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'], name: 'app_installations_tenant_created_at_id_index' },
  ],
});
export type AppInstallation = InferEntity<typeof AppInstallationEntity>;
