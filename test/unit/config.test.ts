import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('config', () => {
  it('defaults to embedded mode with nothing set', () => {
    const config = loadConfig({});
    expect(config.database.url).toBeUndefined();
    expect(config.nats.url).toBeUndefined();
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 4000, production: false });
  });

  it('reports every problem at once, by variable name', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: '70000',
        NATS_URL: '',
        HERALD_NATS_REPLICAS: '9',
        DATABASE_URL: 'http://x',
        LOG_LEVEL: 'loud',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['PORT', 'HERALD_NATS_REPLICAS', 'DATABASE_URL', 'LOG_LEVEL'])
      expect(problems).toContain(name);
  });

  it('accepts only true or false for HERALD_ALLOW_HTTP', () => {
    expect(() => loadConfig({ HERALD_ALLOW_HTTP: 'yes' })).toThrow(/HERALD_ALLOW_HTTP/);
    expect(loadConfig({ HERALD_ALLOW_HTTP: 'true' }).webhooks.allowHttp).toBe(true);
    expect(loadConfig({}).webhooks.allowHttp).toBe(false);
  });

  it('keeps a live replay within half the subscriber buffer', () => {
    expect(() => loadConfig({ HERALD_LIVE_REPLAY_LIMIT: '1500' })).toThrow(
      /HERALD_LIVE_REPLAY_LIMIT: must be at most half/,
    );
    expect(loadConfig({ HERALD_LIVE_BUFFER: '4000', HERALD_LIVE_REPLAY_LIMIT: '1500' }).live).toMatchObject({
      bufferMessages: 4000,
      replayLimit: 1500,
    });
  });

  it('reads the audit checkpoint settings, and refuses a key that is not 32 bytes', () => {
    expect(loadConfig({}).audit).toEqual({
      checkpointKey: undefined,
      checkpointEvery: 1000,
      checkpointIntervalSeconds: 300,
    });
    expect(() => loadConfig({ HERALD_AUDIT_CHECKPOINT_KEY: Buffer.alloc(16).toString('base64') })).toThrow(
      /HERALD_AUDIT_CHECKPOINT_KEY: must be base64 of 32 bytes/,
    );
    expect(() => loadConfig({ HERALD_AUDIT_CHECKPOINT_EVERY: '0' })).toThrow(/HERALD_AUDIT_CHECKPOINT_EVERY/);
    expect(() => loadConfig({ HERALD_AUDIT_CHECKPOINT_INTERVAL_SECONDS: 'soon' })).toThrow(
      /HERALD_AUDIT_CHECKPOINT_INTERVAL_SECONDS/,
    );
  });

  it('requires an operator token in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      /HERALD_ADMIN_TOKEN: required in production/,
    );
    expect(() => loadConfig({ NODE_ENV: 'production', HERALD_ADMIN_TOKEN: 'short' })).toThrow(/at least 24/);
  });
});
