/**
 * The agent's restore limits. Every deadline derives from the launcher's own,
 * RESTORE_TIMEOUT_MS (agent/include/proto.h): fdstore-exec gives up on an agent
 * that sends it nothing for that long. docs/protocol.md "Restores in flight"
 * explains the rule these serve: one transfer per container at a time.
 */
import { RESTORE_TIMEOUT_MS } from '../native/proto.js';

export { RESTORE_TIMEOUT_MS };

/**
 * A restore waiting for the one in flight is refused (an "X" message) after this
 * long: well before its launcher gives up on its own, so the launcher exits with
 * the agent's reason rather than "sent nothing".
 */
export const QUEUE_WAIT_MS = RESTORE_TIMEOUT_MS / 2;

/**
 * While another restore waits, a transfer whose peer has taken no message for
 * this long is abandoned. A real launcher reads as fast as the agent sends;
 * shorter than QUEUE_WAIT_MS, so a restore queued behind one peer that never
 * reads still starts in time. With nobody waiting, a stalled transfer costs one
 * connection and a pinned store (its deferred closes count against max), and
 * lasts until TRANSFER_DEADLINE_MS.
 */
export const STALL_MS = RESTORE_TIMEOUT_MS / 5;

/**
 * No transfer lasts longer, however steadily its peer reads: a peer taking one
 * message per STALL_MS cannot hold a container's restores forever. A real
 * 19,000-fd restore takes well under a second.
 */
export const TRANSFER_DEADLINE_MS = RESTORE_TIMEOUT_MS * 6;

/**
 * Restores that may wait for the one in flight; more are refused at once. Each
 * waiting one holds its connection and pidfd (two fds) and nothing else: its
 * snapshot is taken when it starts.
 */
export const QUEUE_MAX = 4;
