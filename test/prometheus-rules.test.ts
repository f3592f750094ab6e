import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.ts';
import { Metrics } from '../src/metrics.ts';
import { runPromtool, skipWithoutPromtool } from './support/promtool.ts';

const rules = 'ops/prometheus/herald.rules.yml';

describe.skipIf(skipWithoutPromtool)('the example Prometheus rules', () => {
  it('are valid, and each alert fires when it should and only then (promtool test rules)', async () => {
    const checked = await runPromtool(['check', 'rules', rules]);
    expect(checked.output).toContain('SUCCESS');
    expect(checked.code).toBe(0);
    const tested = await runPromtool(['test', 'rules', 'ops/prometheus/herald.rules.test.yml']);
    expect(tested.output).toContain('SUCCESS');
    expect(tested.code).toBe(0);
  });

  it('name only metrics Herald exposes', async () => {
    const exposed = new Set(
      new Metrics({ logger: createLogger('silent') }, { role: 'all' }).registry
        .getMetricsAsArray()
        .map((metric) => metric.name),
    );
    const named = new Set(
      [...readFileSync(rules, 'utf8').matchAll(/\b(herald|nodejs|process)_[a-z0-9_]+/g)].map((match) =>
        match[0].replace(/_(bucket|sum|count)$/, ''),
      ),
    );
    expect(named.size).toBeGreaterThan(5);
    expect([...named].filter((name) => !exposed.has(name))).toEqual([]);
  });
});
