import type { LiveState } from '../api/live.ts';

const LABEL: Record<LiveState | 'paused', string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting… (resumes where it left off)',
  stopped: 'Stopped: the subscription was refused',
  paused: 'Paused',
};

/** The state of a live subscription, announced politely to screen readers when it changes. */
export function LiveIndicator({ state }: { state: LiveState | 'paused' }) {
  return (
    <span className={`live ${state}`} role="status" aria-live="polite">
      {LABEL[state]}
    </span>
  );
}
