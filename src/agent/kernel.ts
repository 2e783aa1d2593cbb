/**
 * The syscalls the agent uses, as the addon exposes them (negative errno, null on
 * EAGAIN). main.ts passes the real addon; nothing else implements this.
 */
import type { Binding, PollHandle } from '../native/binding.js';

export type Kernel = Binding;
export type { PollHandle };
