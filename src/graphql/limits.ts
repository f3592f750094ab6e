import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  type ParseOptions,
  type Source,
  type ValidationRule,
} from 'graphql';
import type { Plugin, YogaLogger } from 'graphql-yoga';
import type { Logger } from '../logger.ts';

/** Request limits the complexity plugin does not cover (it limits depth, breadth and cost). */

export const disableIntrospection = (): Plugin => ({
  onValidate({ addValidationRule }) {
    addValidationRule(NoSchemaIntrospectionCustomRule);
  },
});

function maxAliases(max: number): ValidationRule {
  return (context) => {
    let count = 0;
    return {
      Field(node) {
        if (node.alias && ++count === max + 1) {
          context.reportError(new GraphQLError(`too many aliases (at most ${max})`, { nodes: [node] }));
        }
      },
    };
  };
}

export const limitAliases = (max: number): Plugin => ({
  onValidate({ addValidationRule }) {
    addValidationRule(maxAliases(max));
  },
});

export const limitTokens = (maxTokens: number): Plugin => ({
  onParse({ setParseFn }) {
    setParseFn((source, options) =>
      parse(source as string | Source, { ...(options as ParseOptions | undefined), maxTokens }),
    );
  },
});

export function yogaLogger(logger: Logger): YogaLogger {
  const level =
    (name: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      if (first instanceof Error) logger[name]({ err: first }, rest.map(String).join(' ') || first.message);
      else logger[name](args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    };
  return { debug: level('debug'), info: level('info'), warn: level('warn'), error: level('error') };
}
