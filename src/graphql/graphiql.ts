import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { GraphiQLOptions } from 'graphql-yoga';

/** graphql-ws's browser build (a global `graphqlWs`), next to the package's main entry. */
const graphqlWsBrowserBuild = createRequire(import.meta.url)
  .resolve('graphql-ws')
  .replace(/dist\/[^/]+$/, 'umd/graphql-ws.min.js');

/**
 * What the page runs operations with: each over a graphql-ws socket of its own, whose
 * connectionParams are its tab's headers, named in lower case as Herald reads them (ws.ts). A
 * browser's WebSocket takes no headers, and yoga's own fetcher sends the headers editor's over HTTP
 * only, so its subscriptions opened with empty connectionParams and closed with 4401. Queries and
 * mutations go the same way: telling them from subscriptions would take parsing the editor's text
 * (GraphiQL's parsed document lags it), and the socket runs them as HTTP would.
 */
const fetcherScript = String.raw`
  function heraldFetcher(endpoint) {
    const lowerCased = (headers) =>
      Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
    return async function* (params, options) {
      const client = graphqlWs.createClient({
        url: endpoint.replace(/^http/, 'ws'),
        connectionParams: lowerCased(options?.headers),
        retryAttempts: 0,
      });
      try {
        yield* client.iterate(params);
      } catch (error) {
        // A CloseEvent has no message: say why the socket went (4401: the token).
        if (error instanceof CloseEvent) throw new Error('the socket closed: ' + error.code + ' ' + error.reason);
        throw error;
      } finally {
        await client.dispose();
      }
    };
  }
`;

/**
 * GraphiQL's page with everything inlined: scripts, styles, fonts, icon and editor workers (yoga's
 * default page loads them from a CDN), so it works offline and fetches nothing but /graphql. The
 * bundle (9 MB) is imported on first render: production, which serves no GraphiQL, never loads it.
 */
export async function renderGraphiQL(options: GraphiQLOptions): Promise<string> {
  const [{ css, js, favicon, editorWorkerService, jsonWorker, graphqlWorker }, graphqlWs] = await Promise.all(
    [import('@graphql-yoga/render-graphiql/graphiql'), readFile(graphqlWsBrowserBuild, 'utf8')],
  );
  return /* HTML */ `<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>${options.title ?? 'GraphiQL'}</title>
        <link rel="icon" href="${options.favicon ?? favicon}" />
        <style>
          ${css}
        </style>
      </head>
      <body id="body" class="no-focus-outline">
        <noscript>You need to enable JavaScript to run this app.</noscript>
        <div id="root"></div>
        <script>
          ${graphqlWs};
        </script>
        <script>
          const worker = (source) =>
            URL.createObjectURL(new Blob([source], { type: 'application/javascript' }));
          const workers = {
            editorWorkerService: worker(${JSON.stringify(editorWorkerService)}),
            json: worker(${JSON.stringify(jsonWorker)}),
            graphql: worker(${JSON.stringify(graphqlWorker)}),
          };
          self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (_moduleId, label) => workers[label] };
          ${js};
          ${fetcherScript};
          const options = ${JSON.stringify(options)};
          const endpoint = new URL(options.endpoint ?? location.pathname, location.href).href;
          YogaGraphiQL.renderYogaGraphiQL(document.querySelector('#root'), {
            ...options,
            fetcher: heraldFetcher(endpoint),
          });
        </script>
      </body>
    </html> `;
}
