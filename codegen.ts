import type { CodegenConfig } from '@graphql-codegen/cli';

/** Typed documents for the graphql(`…`) operations in the tests, from the committed schema. */
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  documents: ['test/**/*.ts', '!test/gql/**/*'],
  ignoreNoDocuments: false,
  importExtension: '.ts',
  generates: {
    'test/gql/': {
      preset: 'client',
      presetConfig: { gqlTagName: 'graphql', fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        strictScalars: true,
        scalars: { DateTime: 'string', JSON: 'unknown' },
      },
    },
  },
};

export default config;
