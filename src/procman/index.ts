/**
 * Process manager: runs only the processes it is given (from config, or commands the admin
 * allowed), stops them with SIGTERM then SIGKILL and waits, and reports every transition.
 * Never runs a shell: command and args are passed to spawn as they are.
 */
export { ProcessManager, ProcessError, type ProcessInfo, type ProcessStatus, type OutputLine, type ProcessManagerOptions } from './manager.js';
