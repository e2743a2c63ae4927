/**
 * Process manager: runs only the processes it is given (from config, or commands the admin
 * allowed), stops them with SIGTERM then SIGKILL and waits, and reports every transition.
 * Never runs a shell: command and args are passed to spawn as they are. Children get a minimal
 * environment; the gateway's secrets stay in the gateway.
 */
export {
  ProcessManager,
  ProcessError,
  childEnv,
  BACKOFF_START_MS,
  BACKOFF_MAX_MS,
  type ProcessInfo,
  type ProcessStatus,
  type OutputLine,
  type ProcessManagerOptions,
  type ProcessLogger,
} from './manager.js';
export { startAutoProcesses, type AutoStartOptions, type AutoStartResult, type StartupProbe } from './auto-start.js';
