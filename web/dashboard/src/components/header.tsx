/** Top bar: name, live connection state, gateway uptime, and Log out when the page uses a session. */
import { useState } from 'react';
import type { AdminVia, ConnectionState, Metrics } from '../api';
import { formatUptime } from '../format';
import { useNow } from '../use-now';

/** The dashboard's views. */
export type View = 'overview' | 'analytics';

const VIEWS: { id: View; label: string }[] = [
  { id: 'overview', label: 'Overview' },
  { id: 'analytics', label: 'Traffic analytics' },
];

const LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
};

/** The product name block shown at the top left of every screen. */
export function Brand() {
  return (
    <div className="brand">
      <span className="logo" aria-hidden="true">
        M
      </span>
      <h1>MicroGate</h1>
      <span className="muted small">gateway dashboard</span>
    </div>
  );
}

export function Header({
  connection,
  metrics,
  receivedAt,
  via = null,
  onLogout,
  view,
  onView,
}: {
  connection: ConnectionState;
  metrics: Metrics | null;
  receivedAt: number;
  /** How the gateway admits this page; a session ('cookie') can be ended here. */
  via?: AdminVia | null;
  onLogout?: () => Promise<void>;
  /** The view shown, and how to switch (no tabs without it). */
  view?: View;
  onView?: (v: View) => void;
}) {
  const now = useNow(1000);
  const [logoutError, setLogoutError] = useState<string | null>(null);
  const logout = () => {
    setLogoutError(null);
    onLogout?.().catch((e: unknown) => setLogoutError(e instanceof Error ? e.message : String(e)));
  };
  // uptime_seconds ticks locally between the 5 s metrics pushes; `uptime` is the fallback.
  const uptime =
    metrics === null
      ? '–'
      : typeof metrics.uptime_seconds === 'number'
        ? formatUptime(metrics.uptime_seconds + (connection === 'live' ? (now - receivedAt) / 1000 : 0))
        : metrics.uptime;
  return (
    <header className="topbar">
      <div className="topbar-left">
        <Brand />
        {view && onView && (
          <nav className="tabs" aria-label="Views">
            {VIEWS.map((v) => (
              <a
                key={v.id}
                href={v.id === 'analytics' ? '#analytics' : '#'}
                className={v.id === view ? 'tab on' : 'tab'}
                aria-current={v.id === view ? 'page' : undefined}
                data-testid={`nav-${v.id}`}
                onClick={(e) => {
                  e.preventDefault();
                  onView(v.id);
                }}
              >
                {v.label}
              </a>
            ))}
          </nav>
        )}
      </div>
      <div className="topbar-right">
        <span className={`conn conn-${connection}`} data-testid="connection-state" data-state={connection} role="status">
          <span className="dot" aria-hidden="true" />
          {LABELS[connection]}
        </span>
        <span className="uptime">
          <span className="muted">Uptime</span> <span className="mono" data-testid="uptime">{uptime}</span>
        </span>
        {via === 'cookie' && onLogout && (
          <span className="session">
            {logoutError && (
              <span className="inline-error" role="alert" title={logoutError}>
                Log out failed
              </span>
            )}
            <button type="button" className="btn btn-small btn-ghost" onClick={logout} data-testid="logout" title="End this session (the admin token is needed to sign in again)">
              Log out
            </button>
          </span>
        )}
      </div>
    </header>
  );
}
