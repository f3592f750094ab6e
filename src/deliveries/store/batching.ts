/**
 * How the pipeline's hot statements are batched (see batchLoader): one statement for a whole
 * batch, at most one of a kind every 10 ms. A delivery waits that much longer at most at each
 * step; in exchange, a pipeline keeping up with its load sends a tenth of the statements it would,
 * each ten times the rows.
 */
export const PIPELINE_BATCH = { maxBatchSize: 500, concurrency: 1, intervalMs: 10 };
