/**
 * One container's entry in FdStore status: exactly status/types.ts ContainerState
 * (the agent's /status), so the operator copies it as it is. Tied to that type by
 * SchemaOf. No enums on values the agent computes (state, fd types, listen kinds): a
 * newer agent may report a value this CRD does not list yet, and the operator must
 * still be able to write its status. The descriptions list today's values.
 */
import { CONTAINER_NAME_SCHEMA, LISTEN_MAX } from '../config/schema.js';
import type { OpenApiSchema } from '../config/openapi.js';
import { FDNAME_MAX } from '../native/proto.js';
import { STATUS_FD_GROUPS_MAX, STATUS_TEXT_MAX, type ContainerState, type FdGroup, type WatchdogState } from '../status/types.js';
import { TOKEN_MAX, count, object, text, time, type SchemaOf, type Typed } from './wire.js';

/** The largest errno (A2.6): ERRNO= outside 0..4095 is refused by the agent. */
const ERRNO_MAX = 4095;
const TOKEN_PATTERN = '^[a-z0-9_-]+$';

function token(description: string): Typed<'string'> {
  return { type: 'string', description, maxLength: TOKEN_MAX, pattern: TOKEN_PATTERN };
}

const FD_GROUP: SchemaOf<FdGroup> = {
  name: {
    type: 'string',
    description: 'FDNAME= of the fds (empty for fds stored with an empty name; "stored" when none was given, F3.13).',
    maxLength: FDNAME_MAX,
    pattern: '^[ -9;-~]*$',
  },
  type: token('What they are: tcp_listen, tcp, udp, unix_listen, unix, memfd, pipe, file, other.'),
  count: count('How many fds of this name and type are stored.'),
};

const LAST_RESTORE: SchemaOf<NonNullable<ContainerState['lastRestore']>> = {
  at: time('When the launcher got the fds.'),
  fds: count('Fds passed, listen sockets included (LISTEN_FDS).'),
};

const WATCHDOG: SchemaOf<WatchdogState> = {
  sec: {
    type: 'number',
    description: "The watchdog timeout in effect, in seconds (watchdogSec, or the app's WATCHDOG_USEC= override); 0 = off.",
    minimum: 0,
  },
  deadline: time('When the watchdog fires unless the app sends WATCHDOG=1; absent when off or not armed yet.'),
  failures: count('Watchdog expiries and WATCHDOG=trigger since the agent started (W5.5).'),
  startTimeouts: count('Starts that took longer than timeoutStartSec since the agent started (W5.7).'),
};

const LISTEN: SchemaOf<ContainerState['listen'][number]> = {
  name: { type: 'string', description: 'Its LISTEN_FDNAMES entry.', maxLength: FDNAME_MAX },
  kind: token('tcp, udp, unix-stream or unix-dgram.'),
};

const CONTAINER_STATE: SchemaOf<ContainerState> = {
  name: { ...CONTAINER_NAME_SCHEMA, type: 'string', description: 'The app container (the unit).' },
  state: token(
    "The current run's phase, systemd's sub-state: starting (until READY=1), ready, reloading (RELOADING=1), stopping (STOPPING=1), exited (the main process is gone), unknown (the run began before the agent restarted).",
  ),
  ready: { type: 'boolean', description: 'What /readyz/NAME answers: true = 200.' },
  readyReason: text('Why ready is what it is.'),
  live: { type: 'boolean', description: 'What /livez/NAME answers: false once the watchdog or the start timeout expired.' },
  liveReason: text('Why live is what it is.'),
  stored: count('Fds in the store now (systemd-analyze fdstore).'),
  max: count('fileDescriptorStoreMax in effect.'),
  fdGroups: {
    type: 'array',
    description: `Stored fds counted by FDNAME= and type, largest groups first (at most ${STATUS_FD_GROUPS_MAX}).`,
    maxItems: STATUS_FD_GROUPS_MAX,
    'x-kubernetes-list-type': 'atomic',
    items: object('One group of stored fds.', FD_GROUP),
  },
  fdGroupsOmitted: count(`Groups left out of fdGroups (beyond its ${STATUS_FD_GROUPS_MAX} largest).`),
  restores: count('Restores served: starts that got LISTEN_FDS from the store, since the agent started.'),
  restoreFailures: count('Restores that failed (the launcher went away, a deadline passed), since the agent started.'),
  starts: count('Starts of the container seen (launcher connections), since the agent started.'),
  lastRestore: object('The last restore; absent before the first.', LAST_RESTORE),
  overLimit: count('Fds closed because the store was full (F3.8), since the agent started.'),
  status: {
    type: 'string',
    description: `The last STATUS= of this run, cut to ${STATUS_TEXT_MAX} characters; absent before the first.`,
    maxLength: STATUS_TEXT_MAX,
  },
  errno: {
    type: 'integer',
    description: 'The last ERRNO= of this run (A2.6); absent before the first.',
    minimum: 0,
    maximum: ERRNO_MAX,
  },
  watchdog: object('The watchdog (WatchdogSec=) and start timeout.', WATCHDOG),
  listen: {
    type: 'array',
    description: 'The listen sockets the agent holds for this container (names and kinds, no addresses).',
    maxItems: LISTEN_MAX,
    'x-kubernetes-list-type': 'atomic',
    items: object('One listen socket.', LISTEN),
  },
};

export const CONTAINER_STATUS_SCHEMA: OpenApiSchema = object(
  "One app container's state, as the agent reports it (fdstore ls shows the same).",
  CONTAINER_STATE,
  ['name'],
);
