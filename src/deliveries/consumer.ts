import { ZodError, type z } from 'zod';
import type { BusMessage } from '../bus/bus.ts';
import { decode } from '../bus/contracts.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import type { Logger } from '../logger.ts';
import { retryBackoffMs } from '../util/backoff.ts';

/**
 * How the pipeline's consumers (dispatcher, delivery worker) settle a message. Each handles a
 * message in named stages and settles it once: ack when its work is done (or there is none left),
 * give up on a message that can never be worked, retry later when a stage failed. Every failure
 * is logged with the stage it happened in.
 */
export class MessageSettling {
  private readonly logger: Logger;
  private readonly isBusUnavailable: (error: unknown) => boolean;

  constructor(deps: { logger: Logger; isBusUnavailable: (error: unknown) => boolean }) {
    this.logger = deps.logger;
    this.isBusUnavailable = deps.isBusUnavailable;
  }

  /**
   * The body by its contract, or null once the message is given up: a body that breaks its
   * contract never will be read, so it is logged and terminated rather than retried.
   */
  read<T>(message: BusMessage, contract: z.ZodType<T>, what: string): T | null {
    try {
      return decode(contract, message.data);
    } catch (error) {
      if (!(error instanceof ZodError || error instanceof SyntaxError)) throw error;
      this.giveUp(message, `dropped ${what} that breaks its contract`, { err: error });
      return null;
    }
  }

  /** Never delivers the message again, and says why. */
  giveUp(message: BusMessage, why: string, fields: Record<string, unknown> = {}): void {
    this.logger.error({ ...fields, subject: message.subject }, why);
    message.term();
  }

  /**
   * The message comes back after the shared backoff. A database or bus that did not answer is a
   * warning (it passes, and the work with it); anything else is an error.
   */
  retryLater(
    message: BusMessage,
    failed: { what: string; stage: string; error: unknown },
    fields: object,
  ): void {
    const delayMs = retryBackoffMs(message.deliveryCount);
    const passing = isDatabaseUnavailable(failed.error) || this.isBusUnavailable(failed.error);
    this.logger[passing ? 'warn' : 'error'](
      {
        ...fields,
        err: failed.error,
        stage: failed.stage,
        deliveryCount: message.deliveryCount,
        retryInMs: delayMs,
      },
      `${failed.what} failed at ${failed.stage}; retrying`,
    );
    message.nak(delayMs);
  }
}
