/** Managed backend processes: state, start/stop/restart, and the "Add backend" form. */
import { useState, type FormEvent } from 'react';
import { api, type ManagedProcess } from '../api';
import { formatUptime, type Tone } from '../format';
import { useNow } from '../use-now';

export interface ServicesCardProps {
  processes: ManagedProcess[];
  routes: string[];
  loadError: string | null;
  onRetry: () => void;
  /** Called with the process JSON the server answered (add/start/stop/restart). */
  onProcess: (p: ManagedProcess) => void;
  onShowOutput: (id: string) => void;
  outputId: string | null;
}

type Action = 'start' | 'stop' | 'restart';

function statusOf(p: ManagedProcess): { label: string; tone: Tone } {
  if (p.status === 'crashed') return { label: 'crashed', tone: 'bad' };
  if (p.status === 'stopped') return { label: 'stopped', tone: 'muted' };
  return p.healthy ? { label: 'healthy', tone: 'good' } : { label: 'unhealthy', tone: 'warn' };
}

/** Why a process crashed: `killed by SIGKILL`, `exit status 3`, or the spawn error. */
function exitText(p: ManagedProcess): string {
  if (p.status !== 'crashed') return '';
  if (p.last_error) return p.last_error;
  if (p.exit_signal) return `killed by ${p.exit_signal}`;
  if (typeof p.exit_code === 'number') return `exit status ${p.exit_code}`;
  return '';
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function ServicesCard(props: ServicesCardProps) {
  const { processes } = props;
  const [adding, setAdding] = useState(false);
  const now = useNow(1000);
  const down = processes.filter((p) => p.status !== 'running' || !p.healthy).length;

  return (
    <section className="card services" aria-label="Services">
      <header className="card-head">
        <h2>Services</h2>
        <span className="card-note" data-testid="services-summary">
          {processes.length === 0 ? 'no managed processes' : `${processes.length} process${processes.length === 1 ? '' : 'es'}${down ? ` · ${down} need${down === 1 ? 's' : ''} attention` : ''}`}
        </span>
        <button type="button" className="btn btn-ghost push-right" onClick={() => setAdding((a) => !a)} aria-expanded={adding} data-testid="add-backend-toggle">
          {adding ? 'Cancel' : '+ Add backend'}
        </button>
      </header>
      {props.loadError && (
        <div className="banner banner-error" role="alert">
          Could not load processes: {props.loadError}
          <button type="button" className="btn btn-small" onClick={props.onRetry}>
            Retry
          </button>
        </div>
      )}
      {adding && <AddBackendForm routes={props.routes} processes={processes} onDone={() => setAdding(false)} onProcess={props.onProcess} />}
      <div className="process-list" role="list">
        {processes.map((p) => (
          <ProcessRow key={p.id} p={p} onProcess={props.onProcess} onShowOutput={props.onShowOutput} selected={props.outputId === p.id} now={now} />
        ))}
        {processes.length === 0 && !props.loadError && <div className="empty">No processes. Add one, or list them under <code>processes:</code> in the config.</div>}
      </div>
    </section>
  );
}

function ProcessRow({ p, onProcess, onShowOutput, selected, now }: { p: ManagedProcess; onProcess: (p: ManagedProcess) => void; onShowOutput: (id: string) => void; selected: boolean; now: number }) {
  const [pending, setPending] = useState<Action | null>(null);
  const [error, setError] = useState<string | null>(null);
  const st = statusOf(p);
  const commandLine = [p.command, ...(p.args ?? [])].join(' ');
  const startedMs = p.started_at ? Date.parse(p.started_at) : NaN;

  const run = async (action: Action) => {
    setPending(action);
    setError(null);
    try {
      onProcess(await api.processAction(p.id, action));
    } catch (e) {
      setError(`${action} failed: ${errorText(e)}`);
    } finally {
      setPending(null);
    }
  };

  const btn = (action: Action, label: string, busy: string, kind = '') => (
    <button type="button" className={`btn btn-small ${kind}`} disabled={pending !== null} onClick={() => void run(action)} data-testid={`process-${action}-${p.id}`}>
      {pending === action ? busy : label}
    </button>
  );

  return (
    <div className={`process-row${selected ? ' selected' : ''}`} role="listitem" data-testid={`process-row-${p.id}`} data-status={p.status}>
      <span className={`status tone-${st.tone}`} data-testid={`process-status-${p.id}`} data-status={st.label}>
        <span className="dot" aria-hidden="true" />
        {st.label}
      </span>
      <span className="process-main">
        <span className="process-id">{p.id}</span>
        {error ? (
          <span className="process-sub inline-error" role="alert" title={error} data-testid={`process-error-${p.id}`}>
            {error}
            <button type="button" className="linklike" onClick={() => setError(null)} aria-label="Dismiss error">
              ×
            </button>
          </span>
        ) : (
          <span className="process-sub mono" title={commandLine}>
            {commandLine}
          </span>
        )}
      </span>
      <span className="process-port mono">{p.port ? `:${p.port}` : ''}</span>
      <span className="process-route mono" title={p.route ?? ''}>
        {p.route ?? '—'}
      </span>
      <span className="process-meta" title={p.pid ? `pid ${p.pid}` : p.last_error ?? exitText(p)}>
        {p.status === 'running' && p.pid ? (
          <>
            <span className="mono">pid {p.pid}</span>
            {Number.isFinite(startedMs) && <span className="muted"> · {formatUptime((now - startedMs) / 1000)}</span>}
          </>
        ) : (
          <span className={p.status === 'crashed' ? 'exit-bad' : 'muted'} data-testid={`process-exit-${p.id}`}>
            {exitText(p)}
          </span>
        )}
      </span>
      <span className="process-actions">
        {p.status === 'running' ? (
          <>
            {btn('restart', 'Restart', 'Restarting…')}
            {btn('stop', 'Stop', 'Stopping…', 'btn-danger')}
          </>
        ) : (
          // The server's start works from both stopped and crashed; "Restart" reads better after a crash.
          btn('start', p.status === 'crashed' ? 'Restart' : 'Start', 'Starting…', 'btn-primary')
        )}
        <button type="button" className={`btn btn-small btn-ghost${selected ? ' active' : ''}`} onClick={() => onShowOutput(p.id)} title="Show this process's output" data-testid={`process-output-${p.id}`}>
          Output
        </button>
      </span>
    </div>
  );
}

/** Splits an argument line on spaces, keeping "quoted parts" together. */
function splitArgs(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

/** Suggest the first configured process's command line, with its port turned into `{port}`. */
function suggestion(processes: ManagedProcess[]): { command: string; args: string } {
  const first = processes.find((p) => p.command);
  if (!first) return { command: '', args: '--port {port}' };
  const port = first.port ? String(first.port) : null;
  const args = (first.args ?? []).map((a) => (port && a === port ? '{port}' : a));
  return { command: first.command, args: args.join(' ') };
}

function AddBackendForm({ routes, processes, onDone, onProcess }: { routes: string[]; processes: ManagedProcess[]; onDone: () => void; onProcess: (p: ManagedProcess) => void }) {
  const initial = suggestion(processes);
  const [id, setId] = useState('');
  const [route, setRoute] = useState(routes[0] ?? '');
  const [port, setPort] = useState('');
  const [command, setCommand] = useState(initial.command);
  const [args, setArgs] = useState(initial.args);
  const [startNow, setStartNow] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const portNum = Number(port);
  const portOk = Number.isInteger(portNum) && portNum >= 1 && portNum <= 65535;
  const finalId = id.trim() || (portOk ? `backend-${portNum}` : '');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!portOk) {
      setError('port must be a number between 1 and 65535');
      return;
    }
    if (!command.trim()) {
      setError('command is required');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const body = {
        id: finalId,
        command: command.trim(),
        args: splitArgs(args.replaceAll('{port}', String(portNum))),
        port: portNum,
        ...(route ? { route } : {}),
      };
      const created = await api.addProcess(body);
      onProcess(created);
      if (startNow && created.status !== 'running') {
        try {
          onProcess(await api.processAction(created.id, 'start'));
        } catch (err) {
          // The process exists now (its row has a Start button); keep the form open to show why.
          setError(`added ${created.id}, but start failed: ${errorText(err)}`);
          setBusy(false);
          return;
        }
      }
      onDone();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <form className="add-form" onSubmit={(e) => void submit(e)} data-testid="add-backend-form">
      <label>
        <span>Route</span>
        <select value={route} onChange={(e) => setRoute(e.target.value)} data-testid="add-route">
          {routes.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
          <option value="">— none —</option>
        </select>
      </label>
      <label>
        <span>Port</span>
        <input type="number" min={1} max={65535} required value={port} onChange={(e) => setPort(e.target.value)} placeholder="9005" data-testid="add-port" />
      </label>
      <label>
        <span>ID</span>
        <input value={id} onChange={(e) => setId(e.target.value)} placeholder={portOk ? `backend-${portNum}` : 'backend-<port>'} pattern="[A-Za-z0-9._\-]{1,64}" data-testid="add-id" />
      </label>
      <label className="wide">
        <span>Command</span>
        <input value={command} onChange={(e) => setCommand(e.target.value)} required placeholder="an allowed command" className="mono" data-testid="add-command" />
      </label>
      <label className="wide">
        <span>
          Arguments <em className="muted">({'{port}'} = the port)</em>
        </span>
        <input value={args} onChange={(e) => setArgs(e.target.value)} className="mono" data-testid="add-args" />
      </label>
      <label className="check">
        <input type="checkbox" checked={startNow} onChange={(e) => setStartNow(e.target.checked)} />
        <span>Start now</span>
      </label>
      <button type="submit" className="btn btn-primary" disabled={busy} data-testid="add-submit">
        {busy ? 'Adding…' : 'Add backend'}
      </button>
      <div className="add-error inline-error" role="alert" data-testid="add-error">
        {error ?? ''}
      </div>
    </form>
  );
}
