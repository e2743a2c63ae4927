/**
 * The outcome of the last config reload (SIGHUP, --watch, or the button here), from the `config`
 * event: every problem of a file that was refused, or a one-line summary of what changed.
 */
import type { ConfigEvent } from '../api';

function summary(e: Extract<ConfigEvent, { result: 'success' }>): string {
  const parts: string[] = [];
  const count = (n: number, what: string) => n > 0 && parts.push(`${n} ${what}`);
  count(e.routes.added.length, 'route(s) added');
  count(e.routes.removed.length, 'route(s) removed');
  count(e.routes.changed.length, 'route(s) changed');
  count(e.backends.added.length, 'backend(s) added');
  count(e.backends.removed.length, 'backend(s) removed');
  if (e.sections.length > 0) parts.push(`changed: ${e.sections.join(', ')}`);
  count(e.processes.started.length, 'process(es) started');
  count(e.processes.stopped.length, 'process(es) stopped');
  return parts.length > 0 ? parts.join(' · ') : 'nothing changed';
}

export function ConfigBanner({ event, error, busy, onReload, onDismiss }: { event: ConfigEvent | null; error: string | null; busy: boolean; onReload: () => void; onDismiss: () => void }) {
  const button = (
    <button type="button" className="btn btn-small" onClick={onReload} disabled={busy} data-testid="config-reload">
      {busy ? 'Reloading…' : 'Reload config'}
    </button>
  );
  if (event?.result === 'error') {
    return (
      <div className="banner banner-error" role="alert" data-testid="config-error">
        <div>
          <strong>Config reload refused; the gateway keeps its current config.</strong>
          <ul className="config-problems">
            {event.problems.map((p, i) => (
              <li key={i}>
                <code>{p.text}</code>
              </li>
            ))}
          </ul>
        </div>
        {button}
        <button type="button" className="btn btn-small" onClick={onDismiss}>
          Dismiss
        </button>
      </div>
    );
  }
  return (
    <div className="banner banner-info config-banner" data-testid="config-status">
      <span>
        {event === null
          ? 'Config: as started.'
          : `Config reloaded (generation ${event.generation}): ${summary(event)}${event.restart_required.length > 0 ? ` · needs a restart: ${event.restart_required.join(', ')}` : ''}`}
        {error !== null && <span className="inline-error"> {error}</span>}
      </span>
      {button}
    </div>
  );
}
