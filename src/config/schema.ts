/**
 * The per-container settings as an OpenAPI v3 structural schema: the one source of
 * the agent config file's fields (config/validate.ts takes its field names from
 * here) and of the FdStorePolicy CRD (src/crd/ embeds these objects). Plain data:
 * the agent reads field names from it and never loads a schema validator.
 *
 * The descriptions are what `kubectl explain fdstorepolicy.spec.defaults` shows:
 * written for people who know systemd, each naming the setting it mirrors and its
 * rule in spec/FDSTORE-SPEC.md. No `default:` on the settings themselves: an unset
 * field must stay unset, or the API server would fill every per-container entry
 * with the built-in value and override the policy's `defaults` and the agent's
 * flags (the layering is built-in < flags < defaults < containers[NAME]).
 */
import { NOTIFY_ACCESS_VALUES } from '../notify/values.js';
import { FDNAME_MAX } from '../native/proto.js';
import { UNIX_ADDRESS_MAX } from './address.js';
import type { OpenApiSchema } from './openapi.js';
import { TIME_SPAN_UNITS } from './timespan.js';
import type { ContainerConfig, ListenConfig } from './types.js';

/** Kubernetes container names are DNS-1123 labels. */
export const CONTAINER_NAME_MAX = 63;
export const CONTAINER_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** File descriptors a Linux process can have (fs.nr_open's ceiling): one store can never exceed it. */
export const STORE_MAX_LIMIT = 1 << 30;
/** Over 31 years: any timeout beyond it is a typo, and timers stay exact below it. */
export const SECONDS_MAX = 1e9;
/** "1min 30s 500ms" is 14 characters: a longer time span is a mistake, and bounded text is cheap to check. */
export const TIME_SPAN_TEXT_MAX = 64;
export const BACKLOG_DEFAULT = 4096;
/** Far above any net.core.somaxconn in use; the kernel caps the backlog at it anyway. */
export const BACKLOG_MAX = 1 << 20;
/** Sockets per container: each is an fd of the agent for its whole life, counted in its budget at start. */
export const LISTEN_MAX = 64;
export const PRESERVE_VALUES = ['no', 'restart', 'yes'] as const;
export const LISTEN_KINDS = ['tcp', 'udp', 'unix-stream', 'unix-dgram'] as const;

const W = '[ \\t\\n\\r]';
const NUMBER = '(?:\\+?[0-9]+(?:\\.[0-9]+)?|\\.[0-9]+)';
const UNIT = `(?:${TIME_SPAN_UNITS.join('|')})`;
/**
 * config/timespan.ts's grammar as a regular expression (RE2 and JavaScript alike: no
 * look-around): "infinity", or numbers each followed by a unit, by whitespace, or by
 * the end ("1min 30s", "1min30s", "1 2", "5 s", ".5s"). A unitless number may not be
 * followed directly by another character ("12.34.56", "5x"). What it cannot say: the
 * total must be at most SECONDS_MAX (the parser refuses more).
 */
export const TIME_SPAN_PATTERN = `^${W}*(?:infinity|(?:${NUMBER}(?:${W}*${UNIT}|${W})${W}*)*${NUMBER}(?:${W}*${UNIT})?)${W}*$`;

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const PORT = '0*(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
/** IPv4 exactly; IPv6 loosely (hex digits, '.' and at least one ':' in brackets): the agent checks it is an address. */
export const IP_PORT_PATTERN = `^(?:${OCTET}(?:\\.${OCTET}){3}|\\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\\]):${PORT}$`;
/** An absolute path without NUL, or "@" and an abstract name. */
export const UNIX_ADDRESS_PATTERN = '^(?:/[^\\x00]*|@[\\s\\S]+)$';
/** F3.14: printable ASCII except ':' (LISTEN_FDNAMES is ':'-separated), 1 to FDNAME_MAX bytes. */
export const FD_NAME_PATTERN = '^[ -9;-~]+$';

const ADDRESS_FORMS = 'tcp/udp: "A.B.C.D:PORT" or "[IPV6]:PORT" (IP literals only: no host names, no zone ids); unix-stream/unix-dgram: an absolute path (at most 107 bytes, sun_path) or "@name" for the abstract namespace';

/** Keyed by ListenConfig's fields, so the compiler refuses a schema that misses or adds one. */
const LISTEN_PROPERTIES: Record<keyof ListenConfig, OpenApiSchema> = {
  name: {
    type: 'string',
    description:
      "FileDescriptorName=: the socket's entry in LISTEN_FDNAMES, so the app finds it with sd_listen_fds_with_names(). 1-255 printable ASCII characters except ':' (F3.14); names may repeat.",
    minLength: 1,
    maxLength: FDNAME_MAX,
    pattern: FD_NAME_PATTERN,
  },
  kind: {
    type: 'string',
    description:
      'tcp = ListenStream= on an IP address, udp = ListenDatagram= on an IP address, unix-stream = ListenStream= on a unix socket, unix-dgram = ListenDatagram= on a unix socket. Default tcp.',
    enum: [...LISTEN_KINDS],
    default: 'tcp',
  },
  address: {
    type: 'string',
    description: `Where to bind: ${ADDRESS_FORMS}. The pod shares one network namespace, so the agent binds the app's ports. A unix path outside the container's /run/fdstore directory reaches the app only if its container mounts it. The API server checks the form; the agent also checks that an IPv6 literal is an address.`,
    minLength: 1,
    maxLength: UNIX_ADDRESS_MAX + 1,
  },
  backlog: {
    type: 'integer',
    description: "Backlog= of a stream socket: listen()'s queue length; the kernel caps it at net.core.somaxconn. Ignored for datagram sockets. Default 4096.",
    minimum: 1,
    maximum: BACKLOG_MAX,
    default: BACKLOG_DEFAULT,
  },
  reusePort: {
    type: 'boolean',
    description: 'ReusePort=: set SO_REUSEPORT (tcp and udp; ignored for unix sockets, as systemd does). Default false.',
    default: false,
  },
};

export const LISTEN_SCHEMA: OpenApiSchema = {
  type: 'object',
  description:
    "A socket the agent binds when it starts and passes to the app first on every start, before the stored fds (F3.27): systemd's .socket unit (ListenStream=, ListenDatagram=, FileDescriptorName=). The socket is the agent's own, not part of the store (F3.29): it stays open while no app runs (connections wait in its backlog), and it is not deduplicated against stored fds.",
  required: ['name', 'address'],
  properties: LISTEN_PROPERTIES,
  // The address form follows the kind; an entry without `kind` is tcp (its default).
  anyOf: [
    { properties: { kind: { enum: ['tcp', 'udp'] }, address: { pattern: IP_PORT_PATTERN } } },
    { required: ['kind'], properties: { kind: { enum: ['unix-stream', 'unix-dgram'] }, address: { pattern: UNIX_ADDRESS_PATTERN } } },
  ],
};

/** A duration setting: seconds as an integer, or a systemd time span as a string. */
function timeSpan(description: string): OpenApiSchema {
  return {
    'x-kubernetes-int-or-string': true,
    description: `${description} A whole number of seconds, or a systemd time span (systemd.time(7), parsed as parse_sec() does): "30s", "500ms", "1min 30s", "1.5h", "2.5" (a fraction must be a string: the API takes integers or strings here); units us, ms, s, min (or m), h, d, w, M (month), y; components add up; 0 or "infinity" = off; at most ${SECONDS_MAX} seconds.`,
    minimum: 0,
    maximum: SECONDS_MAX,
    maxLength: TIME_SPAN_TEXT_MAX,
    pattern: TIME_SPAN_PATTERN,
  };
}

/** Every per-container setting except the container's name: a policy's `defaults`. */
export const SETTINGS_PROPERTIES: Record<keyof Omit<ContainerConfig, 'name'>, OpenApiSchema> = {
  fileDescriptorStoreMax: {
    type: 'integer',
    description:
      "FileDescriptorStoreMax= (F3.1): how many fds the container's processes may keep in the store with sd_notify FDSTORE=1; the app sees it as $FDSTORE. Fds beyond it are closed and counted (F3.8); 0 disables the store. Unset: the agent's --fd-store-max, else 4096 (systemd's default is 0; the agent exists to store). Lowered on a running container, the excess stored fds are closed (F3.24). Every stored fd is an open fd of the agent: the agent checks at start that all stores fit its RLIMIT_NOFILE.",
    minimum: 0,
    maximum: STORE_MAX_LIMIT,
  },
  notifyAccess: {
    type: 'string',
    description:
      "NotifyAccess= (N4.1): which of the container's processes may send notify messages (READY=1, FDSTORE=1, WATCHDOG=1, ...). none = nobody; main = only the main process (the one fdstore-exec became); exec = main here (a container has no ExecStartPre= processes); all = any process of the container. Unset: the agent's --notify-access, else all (systemd uses main once a store is configured, F3.2; in a pod the container is the unit, and main would refuse apps started behind sh -c). Applies from the next message.",
    enum: [...NOTIFY_ACCESS_VALUES],
  },
  watchdogSec: timeSpan(
    "WatchdogSec= (W5.1): once armed (READY=1 or the first WATCHDOG=1), the app must send WATCHDOG=1 at least this often; the app sees it as $WATCHDOG_USEC. When a ping is overdue the container's /livez/NAME endpoint fails (W5.5), so a livenessProbe on it restarts the container; see watchdogSignal. Unset: the agent's --watchdog-sec, else off, as in systemd.",
  ),
  timeoutStartSec: timeSpan(
    "TimeoutStartSec= (W5.7): how long a start may take until READY=1 (EXTEND_TIMEOUT_USEC= extends it); overdue, /livez/NAME fails. Unset: the agent's --timeout-start-sec, else off (systemd's default is 90s: an app that never speaks the protocol must not be failed).",
  ),
  preserve: {
    type: 'string',
    description:
      "FileDescriptorStorePreserve= (F3.21-F3.23): restart = keep the store across container restarts, release it only when the pod ends; no = release it whenever the main process exits, so every start begins empty (F3.22); yes = as restart (a pod has no stopped-unit state between restarts). Unset: the agent's --preserve, else restart, as in systemd.",
    enum: [...PRESERVE_VALUES],
  },
  watchdogSignal: {
    type: 'boolean',
    description:
      "WatchdogSignal=SIGABRT (W5.5): on watchdog expiry or WATCHDOG=trigger also send SIGABRT to the main process (once per run), as systemd does, so a hung app dumps its state and exits and the kubelet restarts the container; an app running under another uid than the agent's needs CAP_KILL on the agent. Unset: false: the failing /livez/NAME lets the kubelet restart the container instead.",
  },
  releaseAfterSec: timeSpan(
    'Release the store and close the listen sockets when no main process has existed for this long (a container in CrashLoopBackOff stops completing TCP handshakes nobody accepts); the next start binds the listen sockets again, the stored fds are gone. No systemd equivalent (a unit that stays down releases at once, F3.21). Unset: never.',
  ),
  listen: {
    type: 'array',
    description: `Sockets the agent binds and passes first, in this order, on every start (systemd's .socket units; at most ${LISTEN_MAX}). The list replaces, never merges with, the list of defaults. Unset: none.`,
    maxItems: LISTEN_MAX,
    'x-kubernetes-list-type': 'atomic',
    items: LISTEN_SCHEMA,
  },
};

export const CONTAINER_NAME_SCHEMA = {
  type: 'string',
  description:
    "The app container this entry configures (the pod's spec.containers[].name): systemd's unit. A DNS-1123 label: lowercase letters, digits and '-', at most 63.",
  minLength: 1,
  maxLength: CONTAINER_NAME_MAX,
  pattern: CONTAINER_NAME_PATTERN,
} satisfies OpenApiSchema;

/** A policy's or config file's `defaults`: the settings every container gets unless its own entry sets them. */
export const SETTINGS_SCHEMA: OpenApiSchema = {
  type: 'object',
  description:
    "Settings for every enrolled container of the pod, under the per-container entries and over the agent's flags. Each field mirrors a systemd service setting; unset fields fall through to the agent's flags, then the built-in defaults.",
  properties: SETTINGS_PROPERTIES,
};

/** One container's entry in `containers`: its name and the settings that differ for it. */
export const CONTAINER_SCHEMA: OpenApiSchema = {
  type: 'object',
  description: "One app container's settings, over `defaults`: what a drop-in for that unit is in systemd.",
  required: ['name'],
  properties: { name: CONTAINER_NAME_SCHEMA, ...SETTINGS_PROPERTIES },
};

/** The field names, for the agent's validator: derived, never listed twice. */
export const SETTINGS_FIELDS: readonly string[] = Object.keys(SETTINGS_PROPERTIES);
export const CONTAINER_FIELDS: readonly string[] = ['name', ...SETTINGS_FIELDS];
export const LISTEN_FIELDS: readonly string[] = Object.keys(LISTEN_PROPERTIES);
