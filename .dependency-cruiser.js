/**
 * Which way code may depend (`npm run lint` checks it). Data flows one way: the HTTP edge and
 * GraphQL call the capabilities (tenancy, webhooks, events, deliveries, audit, live…), which use
 * db/ and bus/. Entry points in main/ are imported by nobody.
 */
export default {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'A cycle hides which module decides; type-only imports count too.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'transport-not-storage',
      comment: 'graphql/ and http/ reach the database and the bus only through the services.',
      severity: 'error',
      from: { path: '^src/(graphql|http)/' },
      to: { path: '^src/(db|bus)/' },
    },
    {
      name: 'nothing-imports-main',
      comment: 'main/ holds entry points only.',
      severity: 'error',
      from: { pathNot: '^src/main/' },
      to: { path: '^src/main/' },
    },
    {
      name: 'edge-imported-by-wiring-only',
      comment: 'Only the wiring (app.ts, main/), the HTTP edge and tests use the GraphQL and HTTP layers.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(app\\.ts|main/|http/|graphql/)' },
      to: { path: '^src/(graphql|http)/' },
    },
    {
      name: 'storage-knows-no-capability',
      comment: 'db/ and bus/ know nothing of the capabilities built on them, except the entity list.',
      severity: 'error',
      from: { path: '^src/(db|bus)/', pathNot: '^src/db/entities\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(db|bus|util)/|^src/(logger|config)\\.ts$' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      extensions: ['.ts', '.js'],
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
