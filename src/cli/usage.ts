/** --help texts: each command documents every flag, its default and why. */
import { largestStoreMax, PER_CONTAINER_RESERVED_FDS } from '../agent/limits.js';

/** The budget's reserve for a pod of one container (docs/configuration.md "The fd budget"). */
const ONE_CONTAINER_RESERVED_FDS = 1_000_000 - largestStoreMax(1_000_000);
export const MAIN_HELP = `fdstore: systemd's notify protocol and file descriptor store for Kubernetes pods

Usage: fdstore COMMAND [OPTIONS]

Commands:
  agent     run the sidecar: NOTIFY_SOCKET and fd store of the pod's app containers
  ls        list stored fds and container status (like systemd-analyze fdstore)
  clean     empty one container's store (like systemctl clean --what=fdstore)
  prepare   make each container's directory and launcher before the agent starts
            (the init container of a pod without native sidecars)
  operator  the control plane: FdStorePolicy -> each pod's agent config, agent state
            -> FdStore status and Events (the only part with API credentials)

Run 'fdstore COMMAND --help' for a command's options; 'fdstore --version' for the version.
The launcher for app containers is 'fdstore-exec' (see its --help).
`;

export const AGENT_HELP = `Usage: fdstore agent --run-dir DIR --container NAME [--container NAME ...] [OPTIONS]

Creates DIR/NAME/notify for each container (the NOTIFY_SOCKET of that container)
and keeps the fds its processes send with FDSTORE=1, by systemd's rules.

Options:
  --run-dir DIR           directory shared with the app containers (e.g. an emptyDir
                          at /run/fdstore); each app mounts only DIR/NAME (subPath).
                          DIR/NAME and DIR/.fdstore must be the agent's (docs/security.md);
                          one agent per DIR (a second one exits 2)
  --container NAME        an app container to serve (DNS-1123 label); repeatable
  --config FILE           YAML with defaults and per-container settings that win over
                          flags and may name more containers (docs/configuration.md).
                          Reloaded live: checked every --config-poll and on SIGHUP,
                          applied when its content changed; a file that cannot be
                          used keeps the last good config (logged, counted in
                          fdstore_config_reloads_total). At most 256 KiB
  --config-poll SPAN      how often to check --config (default 5s; at least 100ms;
                          0: only on SIGHUP). The kubelet's own update of a
                          downwardAPI file takes up to a minute or two
  --fd-store-max N        default FileDescriptorStoreMax (default 4096); the stores
                          plus ${ONE_CONTAINER_RESERVED_FDS} (+${PER_CONTAINER_RESERVED_FDS} per extra container) must fit RLIMIT_NOFILE
  --notify-access MODE    default NotifyAccess: none|main|exec|all (default all: the
                          container is the unit, any process in it may notify)
  --watchdog-sec SPAN     default WatchdogSec (default 0: off)
  --timeout-start-sec SPAN
                          default TimeoutStartSec (default 0: off)
  --preserve P            default FileDescriptorStorePreserve: no|restart|yes
                          (default restart; yes behaves as restart in a pod)
  --http ADDR             HTTP endpoint for /metrics, probes and /status (the
                          operator's long-poll), HOST:PORT or off
                          (default 0.0.0.0:9721). Not the config file's listen:
                          sockets, which the agent binds for the app (socket
                          activation)
  --listen ADDR           deprecated name of --http (logs a warning)
  --dedupe METHOD         duplicate detection: auto|dupfd-query|kcmp|fstat (default
                          auto: F_DUPFD_QUERY, then kcmp, then fstat); for diagnostics
  --exit-when-done SPAN   exit (0) once the main process of every --container has
                          exited and none started again for SPAN: for the pods of
                          Jobs in classic mode (docs/injector.md); default: never
  --keeper PATH           the fdstore-keeper socket (DIR/.keeper/keeper.sock when the
                          keeper runs with --run-dir DIR): every stored fd, listen:
                          socket and run is mirrored there, and a restarted agent
                          takes them over (docs/keeper.md). Default: none, the
                          stores end with the agent process
  --log-level LEVEL       debug|info|warning|error (default info); JSON lines on stderr
  -V, --version           print the version and exit
  -h, --help              this text

SPAN is a systemd time span: a number of seconds (30, 0.5) or units as in
systemd.time(7): 500ms, 5s, 1min 30s, 2h; "infinity" is off, like 0.
Usage errors print one 'fdstore agent: ...' line and exit 2.

On SIGTERM the agent stops accepting, closes every stored fd and exits 0 (a
keeper keeps its copies for the next agent).
On SIGHUP it re-reads --config at once, even if unchanged (systemctl daemon-reload).
`;

export const LS_HELP = `Usage: fdstore ls [--run-dir DIR] [--container NAME] [--json]

Asks the running agent (through DIR/.fdstore/admin.sock, open only to the agent's
uid) for its containers and stored fds. Prints a status line per container and a
table per store: FDNAME TYPE INODE-TYPE DEVNO INODE ADDRESS/PATH FLAGS POLL.

  --run-dir DIR      the agent's run directory (default $FDSTORE_RUN_DIR, else
                     /run/fdstore)
  --container NAME   only this container
  --json             one JSON object: {"containers": [...], "fds": [...]}
  -h, --help         this text
`;

export const CLEAN_HELP = `Usage: fdstore clean [--run-dir DIR] --container NAME

Closes every fd in one container's store (systemctl clean --what=fdstore).
The app's next start gets no stored fds.

  --run-dir DIR      the agent's run directory (default $FDSTORE_RUN_DIR, else
                     /run/fdstore)
  --container NAME   the container whose store to empty
  -h, --help         this text
`;

export const PREPARE_HELP = `Usage: fdstore prepare --run-dir DIR --container NAME [--container NAME ...]

For pods without native sidecars (Kubernetes < 1.29), as an init container running
as the agent's uid: creates DIR/NAME (mode 0755, the agent's) for each container and
puts the launcher DIR/NAME/fdstore-exec in it, then exits. The kubelet would
otherwise create a subPath directory as root, which the agent refuses; and the app's
command can start with the launcher at once, which waits for the agent (--wait-ms).
Binds no socket: the agent starts as on a first start and replaces the launcher.
Exits 0 when done, 2 on bad usage or a run dir it refuses (docs/security.md), 1 on
another error.

  --run-dir DIR      the run dir (the emptyDir the agent will use)
  --container NAME   an app container (DNS-1123 label); repeatable
  -h, --help         this text
`;

export const OPERATOR_HELP = `Usage: fdstore operator [OPTIONS]

Watches FdStorePolicy objects and the enrolled pods (label fdstore.dev/enrolled=true),
writes each pod's resolved agent configuration into its fdstore.dev/config annotation,
keeps one FdStore per pod current with its agent's /status (long-poll), and records
Events on the pods. Run 2 replicas: one leads (a coordination.k8s.io Lease), the other
takes over when it goes. See docs/operator.md.

Options:
  --kubeconfig PATH       kubeconfig to use outside a cluster; in a pod the service
                          account (in-cluster config) is used
  --namespace NS          watch only this namespace (default: all namespaces; the
                          ClusterRole in charts/fdstore/files/operator-rbac.yaml)
  --lease-namespace NS    namespace of the leader-election Lease (default
                          $POD_NAMESPACE, else --namespace; required outside a pod)
  --lease-name NAME       the Lease's name (default fdstore-operator)
  --identity ID           this replica's holder identity (default $POD_NAME or the
                          host name, plus a random suffix per process)
  --http HOST:PORT|off    /metrics, /healthz, /readyz (default 0.0.0.0:9722)
  --log-level L           debug|info|warning|error (default info)
  -h, --help              this text
  -V, --version           print the version

The injector (docs/injector.md): a mutating admission webhook that adds the sidecar
to pods an FdStorePolicy with spec.injection.enabled selects (or annotated
fdstore.dev/inject: "true"). Served by every replica, not only the leader.
  --webhook HOST:PORT|off serve POST /inject (AdmissionReview v1) over HTTPS here
                          (default off; the chart: 0.0.0.0:9443)
  --webhook-cert FILE     the serving certificate, PEM (default
                          /etc/fdstore/webhook/tls.crt); re-read when it changes
  --webhook-key FILE      its private key (default /etc/fdstore/webhook/tls.key)
  --inject-mode M         auto|native|classic (default auto: native when the API
                          server's /version is 1.29 or later, classic before and
                          while the version is unknown)
  --inject-sidecar JSON   the sidecar settings, the chart's sidecar values plus image
                          and pullPolicy (the chart passes them; default: the chart's
                          defaults with image localhost/fdstore:VERSION)
`;
