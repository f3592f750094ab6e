import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventType, publishOrFail, startTestApp, type TestApp } from './support/app.ts';
import { CreateApiToken } from './support/operations.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

/** Debian's package (.ci/run installs it): npm's browser downloads need a network CI may not have. */
const CHROMIUM = '/usr/bin/chromium';
/** Left for a look after the run, failed or not (.gitignore'd); docs/console.png is a copy of the first. */
const SCREENSHOTS = { wide: 'test-results/console-1280.png', phone: 'test-results/console-phone.png' };
const installed = existsSync(CHROMIUM);
const skipped = !installed && !process.env.CI;
if (skipped)
  console.warn(`console.test.ts skipped: no ${CHROMIUM} (apt-get install chromium, as .ci/run does)`);

/** A fresh clone has no build: the suite makes it, as `npm start` does, when missing or stale. */
function buildConsole() {
  execFileSync(process.execPath, ['scripts/console-build.ts', '--if-stale'], { stdio: 'inherit' });
}

describe('the console route', () => {
  let h: TestApp;
  beforeAll(async () => {
    buildConsole();
    h = await startTestApp('embedded');
  });
  afterAll(async () => h?.stop());

  it('serves the page for its own routes, hashed assets for good, and nothing outside the build', async () => {
    const page = await fetch(`${h.url}/console/deliveries/abc`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html; ?charset=utf-8$/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await page.text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${h.url}${script}`);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${h.url}/console`)).status).toBe(200);

    expect((await fetch(`${h.url}/console/assets/missing.js`)).status).toBe(404);
    // Only the build's own files are served: a way out of it names a file the build does not have.
    for (const outside of ['..%2f..%2fpackage.json', '%2e%2e/%2e%2e/package.json', '../../package.json']) {
      const response = await fetch(`${h.url}/console/${outside}`);
      const body = await response.text();
      // Not found, or the console's page (a path it does not know): never the file.
      if (response.status === 200) expect(body, outside).toBe(html);
      else expect(response.status, outside).toBe(404);
      expect(body, outside).not.toContain('"name": "herald"');
    }
    expect((await fetch(`${h.url}/console/`, { method: 'POST' })).status).toBe(405);
    // Not the console's: yoga answers it.
    expect((await fetch(`${h.url}/consoles`)).status).toBe(404);
  });
});

describe.skipIf(skipped)('the console in a browser', () => {
  let h: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let browser: Browser;
  let page: Page;
  /** Requests to hosts other than Herald's (refused), and what the page logged as errors. */
  const foreign: string[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    if (!installed)
      throw new Error(`${CHROMIUM} is missing: CI must run this suite (apt-get install chromium)`);
    buildConsole();
    h = await startTestApp('production', { env: toLocalReceivers });
    receiver = await startReceiver();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const herald = new URL(h.url).host;
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      if (new URL(url).host === herald) return route.continue();
      foreign.push(url);
      return route.abort('blockedbyclient');
    });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(String(error)));
  });

  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    await h?.stop();
  });

  it('signs in, creates a webhook, shows its attempt live, redelivers it and shows the audit entry', async () => {
    const type = await newEventType(h.operator, 'Console');
    await page.goto(`${h.url}/console`);
    await page.getByLabel('Tenant token').fill('hrld_not_a_token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Herald does not know this token').waitFor();
    // Herald answers 401 to the wrong token: the page logs that failed request, and nothing else is allowed.
    problems.length = 0;
    await page.getByLabel('Tenant token').fill(h.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('No webhooks yet').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('herald.token'))).toBe(h.token);
    expect(await page.evaluate(() => localStorage.length + document.cookie.length)).toBe(0);

    await page.getByRole('button', { name: 'New webhook' }).click();
    await page.getByLabel('Endpoint URL').fill('not a url');
    await page.getByRole('checkbox', { name: type }).check();
    await page.getByRole('button', { name: 'Create webhook' }).click();
    // The ValidationError is shown under its field, and the field says so to assistive technology.
    await expect(page.locator('#url-error').textContent()).resolves.toBeTruthy();
    await expect(page.getByLabel('Endpoint URL').getAttribute('aria-invalid')).resolves.toBe('true');

    await page.getByLabel('Endpoint URL').fill(`${receiver.url}/hook`);
    await page.getByLabel('Name (optional)').fill('Console receiver');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await expect(page.getByTestId('webhook-secret').textContent()).resolves.toMatch(/^whsec_/);
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await page.getByRole('heading', { name: 'Console receiver' }).waitFor();

    // Each page change puts the focus on the new content; the sections are a few Shift+Tabs back.
    const focused = () => page.evaluate(() => document.activeElement?.textContent);
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('main');
    for (let presses = 0; presses < 6 && (await focused()) !== 'Live deliveries'; presses++)
      await page.keyboard.press('Shift+Tab');
    await expect(focused()).resolves.toBe('Live deliveries');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();

    // graphql-ws acknowledges no subscribe: events are published until an attempt shows.
    let published = 0;
    let lastPublish = 0;
    const row = page.getByTestId('attempt-row').first();
    await waitFor(
      async () => {
        if (await row.isVisible()) return true;
        if (Date.now() - lastPublish > 500) {
          lastPublish = Date.now();
          await publishOrFail(h.gql, {
            type,
            idempotencyKey: `${type}/${published++}`,
            current: { n: published },
          });
        }
        return false;
      },
      { what: 'an attempt in the live stream' },
    );
    await expect(row.textContent()).resolves.toContain('200');

    await row.getByRole('link').click();
    const attempts = page.getByTestId('attempt');
    await attempts.first().waitFor();
    await expect(attempts.first().textContent()).resolves.toContain('Status code200');
    await page.screenshot({ path: SCREENSHOTS.wide, fullPage: false });

    const before = receiver.received.length;
    await page.getByRole('button', { name: 'Redeliver' }).click();
    await page.getByText('Queued again').waitFor();
    // The page follows the webhook's attempts live: the redelivery's shows without a reload.
    await waitFor(async () => (await attempts.count()) === 2, { what: 'the second attempt on the page' });
    expect(receiver.received.length).toBeGreaterThan(before);

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByTestId('audit-entry').filter({ hasText: 'delivery.redelivered' }).waitFor();
    await page.getByTestId('audit-entry').filter({ hasText: 'webhook.created' }).waitFor();
    await expect(page.getByTestId('chain-status').textContent()).resolves.toMatch(/^Chain verified/);
    await page.getByLabel('Action').fill('webhook.created');
    await waitFor(async () => (await page.getByTestId('audit-entry').count()) === 1, {
      what: 'the filtered audit log',
    });

    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('link', { name: 'Console receiver' }).click();
    await page.getByRole('figure').first().waitFor();
    await page.setViewportSize({ width: 390, height: 844 });
    // Nothing wider than the phone: the page scrolls down, not sideways.
    await waitFor(async () => (await page.evaluate(() => document.documentElement.scrollWidth)) <= 390, {
      what: 'the page (its charts resized) to fit the phone',
    });
    await page.screenshot({ path: SCREENSHOTS.phone, fullPage: true });

    expect(foreign, 'requests to hosts other than Herald').toEqual([]);
    expect(problems, 'console errors and page errors').toEqual([]);
  });

  it('shows a refused live subscription once, without subscribing again', async () => {
    const created = (
      await h.gql(CreateApiToken, { input: { name: 'console-no-deliveries', scopes: ['webhooks:read'] } })
    ).data!.createApiToken;
    if (created.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');
    // A tab of its own: the session (sessionStorage) is per tab.
    const tab = await page.context().newPage();
    tab.setDefaultTimeout(10_000);
    let subscribes = 0;
    let completes = 0;
    tab.on('websocket', (ws) => {
      ws.on('framesent', ({ payload }) => {
        if ((JSON.parse(String(payload)) as { type: string }).type === 'subscribe') subscribes++;
      });
      ws.on('framereceived', ({ payload }) => {
        if ((JSON.parse(String(payload)) as { type: string }).type === 'complete') completes++;
      });
    });
    await tab.goto(`${h.url}/console/deliveries`);
    await tab.getByLabel('Tenant token').fill(created.token);
    await tab.getByRole('button', { name: 'Sign in' }).click();
    await tab
      .getByRole('status')
      .filter({ hasText: /^Stopped: .*deliveries:read/ })
      .waitFor();
    // Herald completes the refused subscription: a client that resubscribed on that would do it at
    // once, so by the end of a request to Herald from the page after the complete, it would have.
    await waitFor(() => completes > 0, { what: 'the refused subscription completed' });
    await tab.evaluate(async () => {
      const response = await fetch('/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${sessionStorage.getItem('herald.token')}`,
        },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      return response.text();
    });
    expect(subscribes).toBe(1);
    await tab.close();
  });
});
