import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanOptions,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator, parseKeyPairsIntoRecord } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

/**
 * OpenTelemetry traces: one trace from publishEvent (or an inbound request) through the stream,
 * the dispatcher and the delivery queue to each attempt. The W3C trace context crosses processes
 * in message headers, and is stored with the event for the outbox relay.
 *
 * Off unless an OTLP endpoint is configured: the API's no-op tracer then makes every helper here
 * next to free, and no headers are written.
 */

type TracingConfig = Config['tracing'];

export interface Tracing {
  /** Exports the spans still buffered, then unregisters, so a later start in this process works. */
  stop(): Promise<void>;
}

const samplers: Record<TracingConfig['sampler'], (ratio: number) => Sampler> = {
  always_on: () => new AlwaysOnSampler(),
  always_off: () => new AlwaysOffSampler(),
  traceidratio: (ratio) => new TraceIdRatioBasedSampler(ratio),
  parentbased_always_on: () => new ParentBasedSampler({ root: new AlwaysOnSampler() }),
  parentbased_always_off: () => new ParentBasedSampler({ root: new AlwaysOffSampler() }),
  parentbased_traceidratio: (ratio) => new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
};

/** The traces URL the config names, as OTLP defines it; undefined when tracing is off. */
export function tracesUrl(config: TracingConfig): string | undefined {
  if (config.disabled) return undefined;
  if (config.tracesEndpoint) return config.tracesEndpoint;
  if (!config.endpoint) return undefined;
  const url = new URL(config.endpoint);
  url.pathname = `${url.pathname.replace(/\/?$/, '/')}v1/traces`;
  return url.href;
}

/** How long a stop waits for the last spans to go: a collector that does not answer cannot hold it up. */
const FLUSH_TIMEOUT_MS = 3_000;

/**
 * Registers the tracer provider, the W3C propagator and the context manager; null when tracing is
 * off, or when this process has a tracer provider already (a second app in one process, or a host
 * with its own SDK): its spans then go to that one, and nothing of it is touched.
 */
export function startTracing(config: TracingConfig, role: string, logger: Logger): Tracing | null {
  const url = tracesUrl(config);
  if (!url) return null;
  const attributes = parseKeyPairsIntoRecord(config.resourceAttributes);
  const provider = new TracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        ...attributes,
        [ATTR_SERVICE_NAME]: config.serviceName ?? attributes[ATTR_SERVICE_NAME] ?? `herald-${role}`,
        'herald.role': role,
      }),
    ),
    sampler: samplers[config.sampler](config.samplerArg),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url }),
        scheduledDelayMillis: config.scheduleDelayMs,
        exportTimeoutMillis: config.exportTimeoutMs,
        maxQueueSize: config.maxQueueSize,
        maxExportBatchSize: Math.min(config.maxExportBatchSize, config.maxQueueSize),
      }),
    ],
  });
  if (!trace.setGlobalTracerProvider(provider)) {
    logger.warn('tracing: this process has a tracer provider already; its spans go there');
    void provider.shutdown();
    return null;
  }
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return {
    async stop() {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${FLUSH_TIMEOUT_MS} ms`)),
          FLUSH_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([provider.shutdown(), timeout]);
      } catch (error) {
        // The spans are lost, not the work: the stop goes on.
        logger.warn({ err: error, url }, 'tracing: the last spans could not be exported');
      } finally {
        clearTimeout(timer);
        trace.disable();
        propagation.disable();
        context.disable();
        contextManager.disable();
      }
    },
  };
}

/**
 * Runs `work` in a new span, active for what it calls and ended when it settles; an error it
 * throws is recorded. The parent is the active context unless `parent` says otherwise.
 */
export function inSpan<T>(
  name: string,
  options: SpanOptions & { parent?: Context },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const { parent = context.active(), ...spanOptions } = options;
  // Looked up per span: a tracer taken before a provider is registered would stay a no-op.
  return trace.getTracer('herald').startActiveSpan(name, spanOptions, parent, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      recordFailure(error, span);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Adds attributes to the active span (none when tracing is off). */
export function annotate(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}

/** Marks a span failed with the error: work that settles its failure itself rather than throwing. */
export function recordFailure(error: unknown, span = trace.getActiveSpan()): void {
  if (!span) return;
  const message = error instanceof Error ? error.message : String(error);
  span.recordException(error instanceof Error ? error : message);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** Runs a consumer's handling of a message in a span continuing the trace its headers carry. */
export function consuming<T>(
  name: string,
  message: { headers: Readonly<Record<string, string>>; deliveryCount: number },
  work: () => Promise<T>,
): Promise<T> {
  return inSpan(
    name,
    {
      kind: SpanKind.CONSUMER,
      parent: contextFrom(message.headers),
      attributes: { 'herald.message.delivery_count': message.deliveryCount },
    },
    work,
  );
}

/** The W3C trace context headers (traceparent, tracestate) of `ctx`; none when tracing is off. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const headers: Record<string, string> = {};
  propagation.inject(ctx, headers);
  return headers;
}

/** The context that headers carry (a remote parent), or the root context when they carry none. */
export function contextFrom(headers: Readonly<Record<string, string>>): Context {
  return propagation.extract(ROOT_CONTEXT, headers);
}

/** The active traceparent, to store with what a later process continues; null when not traced. */
export function currentTraceparent(): string | null {
  return traceHeaders().traceparent ?? null;
}

/** Runs `work` in the trace of a stored traceparent: a retry queued later continues its event's. */
export function inTraceOf<T>(traceparent: string | null, work: () => T): T {
  return context.with(traceparentContext(traceparent), work);
}

/** The context of a stored traceparent (see currentTraceparent). */
export function traceparentContext(traceparent: string | null | undefined): Context {
  return contextFrom(traceparent ? { traceparent } : {});
}
