import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventType, publishOrFail, startTestApp, type TenantClient, type TestApp } from './support/app.ts';
import { waitFor } from './support/wait.ts';

/** Debian's package (.ci/run installs it): npm's browser downloads need a network CI may not have. */
const CHROMIUM = '/usr/bin/chromium';
/** Left for a look after the run, failed or not (.gitignore'd). */
const SCREENSHOT = 'test-results/graphiql.png';
const installed = existsSync(CHROMIUM);
const skipped = !installed && !process.env.CI;
if (skipped)
  console.warn(`graphiql.test.ts skipped: no ${CHROMIUM} (apt-get install chromium, as .ci/run does)`);

/** The text an editor shows: Monaco draws spaces as no-break spaces. */
const shown = async (editor: Locator) =>
  (await editor.locator('.view-lines').innerText()).replace(/\u00a0/g, ' ');

/** Replaces an editor's text by typing, as a user does (Monaco's auto-closed brackets included). */
async function typeInto(page: Page, editor: Locator, text: string) {
  await editor.locator('.view-lines').click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Backspace');
  await page.keyboard.type(text);
  await waitFor(async () => (await shown(editor)) === text, { what: `the editor to show ${text}` });
}

describe.skipIf(skipped)('GraphiQL in a browser', () => {
  let h: TestApp;
  let tenant: TenantClient;
  let tenantName: string;
  let browser: Browser;
  let page: Page;
  /** Everything the page asked for, and what of it went to a host other than Herald's (refused). */
  const requested: string[] = [];
  const foreign: string[] = [];
  const onlyHerald = () => expect(foreign, 'requests to hosts other than Herald').toEqual([]);
  /** What came over the page's WebSockets. */
  const frames: string[] = [];

  beforeAll(async () => {
    if (!installed)
      throw new Error(`${CHROMIUM} is missing: CI must run this suite (apt-get install chromium)`);
    h = await startTestApp('production');
    tenantName = `GraphiQL ${randomBytes(4).toString('hex')}`;
    tenant = await h.tenant(tenantName);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const herald = new URL(h.url).host;
    // Sees every request of the page and its workers; data: and blob: URLs (the inlined icon,
    // fonts and editor workers) never reach the network, nor this.
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      requested.push(url);
      if (new URL(url).host === herald) return route.continue();
      foreign.push(url);
      return route.abort('blockedbyclient');
    });
    page = await context.newPage();
    // Well inside the test's own timeout, so that a wait which fails says what it waited for.
    page.setDefaultTimeout(10_000);
    page.on('websocket', (socket) => {
      requested.push(socket.url());
      socket.on('framereceived', (frame) => frames.push(String(frame.payload)));
      if (new URL(socket.url()).host !== herald) foreign.push(socket.url());
    });
  });

  afterAll(async () => {
    await page?.screenshot({ path: SCREENSHOT });
    await browser?.close();
    await h?.stop();
  });

  it('loads from Herald alone, runs a query and a subscription over graphql-ws', async () => {
    const type = await newEventType(h.operator, 'GraphiQL');
    await publishOrFail(tenant.gql, { type, idempotencyKey: `${type}/stored` });

    await page.goto(`${h.url}/graphql`);
    onlyHerald();
    await expect(page.title()).resolves.toBe('Herald');
    const queryEditor = page.locator('.graphiql-query-editor');
    const headersEditor = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)');
    const response = page.locator('.graphiql-response');
    const run = page.locator('.graphiql-execute-button');
    await page.getByRole('button', { name: 'Headers' }).click();
    await waitFor(async () => (await shown(headersEditor)).includes('Bearer <token'), {
      what: 'the Authorization hint in the headers editor',
    });

    await typeInto(page, headersEditor, `{"Authorization": "Bearer ${tenant.token}"}`);
    await typeInto(
      page,
      queryEditor,
      `{ viewer { tenant { name } } events(filter: { types: ["${type}"] }) { edges { node { idempotencyKey } } } }`,
    );
    await run.click();
    await waitFor(async () => (await shown(response)).includes(`${type}/stored`), {
      what: 'the stored event in the result pane',
    });
    expect(await shown(response)).toContain(`"name": "${tenantName}"`);

    await typeInto(
      page,
      queryEditor,
      `subscription { eventPublished(types: ["${type}"]) { idempotencyKey } }`,
    );
    await run.click();
    // graphql-ws acknowledges no subscribe: events are published until one shows.
    let published = 0;
    const key = await waitFor(
      async () => {
        const text = await shown(response);
        const seen = /"idempotencyKey": "([^"]+\/live-\d+)"/.exec(text)?.[1];
        if (seen) return seen;
        await publishOrFail(tenant.gql, { type, idempotencyKey: `${type}/live-${published++}` });
        return false;
      },
      { what: 'a live event in the result pane' },
    );
    expect(requested).toContain(`${h.url.replace('http', 'ws')}/graphql`);
    expect(frames.some((frame) => frame.includes(key))).toBe(true);
    onlyHerald();
  });
});
