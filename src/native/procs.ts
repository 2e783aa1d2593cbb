/**
 * What the agent reads about other processes from /proc (shared PID namespace).
 * An interface so the message rules can be tested without real pids.
 */
import { readFileSync } from 'node:fs';

export interface Procs {
  /** Contents of /proc/PID/cgroup, null if the process is gone. */
  cgroup(pid: number): string | null;
  /** Alive and not a zombie (A2.9). */
  alive(pid: number): boolean;
  /** This process's pid (MAINPID may not name the agent). */
  self(): number;
  /**
   * The process behind one of our pidfds has exited and been reaped: its fdinfo
   * then reads `Pid: -1`. Works without a shared PID namespace, where the pid is 0.
   */
  reaped(pidfd: number): boolean;
  /** Contents of /proc/PID/mountinfo (readable for any pid, no ptrace needed), null if gone. */
  mountinfo(pid: number | 'self'): string | null;
}

export const realProcs: Procs = {
  cgroup(pid) {
    try {
      return readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      return null;
    }
  },
  alive(pid) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The state follows the last ')' (the command name may contain parentheses).
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  },
  self: () => process.pid,
  reaped(pidfd) {
    try {
      return /^Pid:\s*-1$/m.test(readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8'));
    } catch {
      return false;
    }
  },
  mountinfo(pid) {
    try {
      return readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
    } catch {
      return null;
    }
  },
};
