/**
 * The syscalls the agent uses: src/native/sys.ts, the one validating wrapper of
 * the addon (throws SysError with `code`; null means EAGAIN). A type alias so
 * every consumer names the same thing; main.ts passes the module itself.
 */
import type * as sys from './sys.js';

export type Kernel = typeof sys;
export type { PollHandle } from './binding.js';
