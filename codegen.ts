import type { CodegenConfig } from '@graphql-codegen/cli';

const typed = {
  preset: 'client',
  presetConfig: { gqlTagName: 'graphql', fragmentMasking: false },
  config: {
    useTypeImports: true,
    enumsAsTypes: true,
    strictScalars: true,
    scalars: { DateTime: 'string', JSON: 'unknown' },
  },
} as const;

/** Typed documents for the graphql(`…`) operations of the tests and of the console, from the committed schema. */
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  ignoreNoDocuments: false,
  importExtension: '.ts',
  generates: {
    'test/gql/': { ...typed, documents: ['test/**/*.ts', '!test/gql/**/*'] },
    // Strings, not DocumentNodes: the browser bundle then needs no graphql-js to print them.
    'console/src/gql/': {
      ...typed,
      documents: ['console/src/**/*.{ts,tsx}', '!console/src/gql/**/*'],
      config: { ...typed.config, documentMode: 'string' },
    },
  },
};

export default config;
