/** Sign-in with the admin token, shown instead of the dashboard when the gateway does not admit the page. */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { Brand } from './header';

function errorText(err: unknown): string {
  if (!(err instanceof ApiError)) return err instanceof Error ? err.message : String(err);
  if (err.status === 401) return 'That is not the admin token.';
  if (err.status === 429) return `Too many attempts. Try again in ${err.retryAfterS ?? 10} s.`;
  if (err.status === 0) return 'The gateway cannot be reached. Check the connection and try again.';
  return err.message;
}

export function LoginPanel({
  loginEnabled,
  reason,
  onLogin,
}: {
  loginEnabled: boolean;
  reason: 'expired' | 'signed_out' | null;
  onLogin: (token: string) => Promise<void>;
}) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => input.current?.focus(), []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!token.trim()) {
      setError('Enter the admin token.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onLogin(token.trim());
      // Unmounted now: the dashboard replaces this panel.
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
      input.current?.select();
    }
  };

  return (
    <div className="app login-page">
      <header className="topbar">
        <Brand />
      </header>
      <main className="login-wrap">
        <section className="card login-card" data-testid="login-panel" aria-labelledby="login-title">
          <div className="card-head">
            <h2 id="login-title">Sign in</h2>
          </div>
          {loginEnabled ? (
            <form className="login-form" onSubmit={(e) => void submit(e)}>
              {reason === 'expired' && (
                <p className="banner banner-info" data-testid="login-reason">
                  Your session ended. Sign in again to continue.
                </p>
              )}
              {reason === 'signed_out' && (
                <p className="banner banner-info" data-testid="login-reason">
                  You are signed out.
                </p>
              )}
              <p className="muted">
                Enter the gateway&apos;s admin token (<span className="mono">admin.token</span>). It is exchanged for a session cookie that lasts
                12 hours; this page does not keep the token.
              </p>
              <label className="login-field">
                <span>Admin token</span>
                <input
                  ref={input}
                  type="password"
                  autoComplete="current-password"
                  spellCheck={false}
                  value={token}
                  onChange={(e) => setToken(e.target.value)}
                  aria-invalid={error !== null}
                  aria-describedby="login-error"
                  data-testid="login-token"
                />
              </label>
              <button type="submit" className="btn btn-primary" disabled={busy} data-testid="login-submit">
                {busy ? 'Signing in…' : 'Sign in'}
              </button>
              <div id="login-error" className="inline-error" role="alert" data-testid="login-error">
                {error ?? ''}
              </div>
            </form>
          ) : (
            <div className="login-form" data-testid="login-disabled">
              <p>Remote admin access is disabled on this gateway.</p>
              <p className="muted">
                It has no <span className="mono">admin.token</span>, so the dashboard only answers on the gateway&apos;s own machine (open it there
                as <span className="mono">http://localhost:&lt;port&gt;/dashboard/</span>). Set <span className="mono">admin.token</span> to sign in
                from here.
              </p>
            </div>
          )}
        </section>
      </main>
    </div>
  );
}
