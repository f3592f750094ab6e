import type { LiveState } from '../api/live.ts';

const LABEL: Record<Exclude<LiveState, object> | 'paused', string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting… (resumes where it left off)',
  paused: 'Paused',
};

/** The state of a live subscription, announced politely to screen readers when it changes. */
export function LiveIndicator({ state }: { state: LiveState | 'paused' }) {
  const stopped = typeof state === 'object';
  return (
    <span className={`live ${stopped ? 'stopped' : state}`} role="status" aria-live="polite">
      {stopped ? `Stopped: ${state.stopped}` : LABEL[state]}
    </span>
  );
}
