/**
 * Whether this page may use the dashboard API, and how: asks the gateway once, then listens for
 * 401s. From another machine the answer is a sign-in with the admin token, which the gateway
 * trades for an HttpOnly cookie; the page never stores the token.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, onUnauthorized, type AdminVia } from './api';

export type SessionState =
  | { kind: 'checking' }
  | { kind: 'in'; via: AdminVia | null }
  /** `expired`: the gateway stopped accepting a signed-in page (timeout, restart); `signed_out`: Log out. */
  | { kind: 'out'; loginEnabled: boolean; reason: 'expired' | 'signed_out' | null };

export interface Session {
  state: SessionState;
  /** Changes on every sign-in, so the dashboard can remount: fresh data, fresh stream. */
  generation: number;
  /** Resolves when signed in; rejects with the ApiError (401 wrong token, 429, 403 disabled). */
  login: (token: string) => Promise<void>;
  /** Rejects with the ApiError when the gateway could not be told (the session then stays). */
  logout: () => Promise<void>;
}

export function useSession(): Session {
  const [state, setState] = useState<SessionState>({ kind: 'checking' });
  const [generation, setGeneration] = useState(0);
  const loginEnabled = useRef(true);

  useEffect(() => {
    let live = true;
    api.session().then(
      (s) => {
        if (!live) return;
        loginEnabled.current = s.login_enabled;
        setState(s.authenticated ? { kind: 'in', via: s.via } : { kind: 'out', loginEnabled: s.login_enabled, reason: null });
      },
      // Gateway unreachable: show the dashboard, whose panels say so and retry.
      () => live && setState({ kind: 'in', via: null }),
    );
    const off = onUnauthorized(() => {
      if (live) setState((prev) => (prev.kind === 'out' ? prev : { kind: 'out', loginEnabled: loginEnabled.current, reason: prev.kind === 'in' ? 'expired' : null }));
    });
    return () => {
      live = false;
      off();
    };
  }, []);

  const login = useCallback(async (token: string) => {
    await api.login(token);
    const s = await api.session().catch(() => null);
    setGeneration((g) => g + 1);
    setState({ kind: 'in', via: s?.via ?? 'cookie' });
  }, []);

  const logout = useCallback(async () => {
    await api.logout();
    setState({ kind: 'out', loginEnabled: loginEnabled.current, reason: 'signed_out' });
  }, []);

  return { state, generation, login, logout };
}
