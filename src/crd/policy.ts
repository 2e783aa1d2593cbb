/**
 * FdStorePolicy: which enrolled pods get which agent settings. The spec's settings
 * are config/schema.ts's objects, embedded as they are (one source for the agent's
 * config file and this CRD). The status is the operator's (the leader's) alone.
 */
import { CONTAINER_SCHEMA, SETTINGS_SCHEMA } from '../config/schema.js';
import type { OpenApiSchema } from '../config/openapi.js';
import { conditionsSchema } from './condition.js';
import { AGE_COLUMN, customResourceDefinition, type CustomResourceDefinition } from './crd.js';
import { DNS1123_LABEL_PATTERN, POLICY_NAME_MAX, podNameSchema, policyNameSchema } from './names.js';
import { labelSelectorSchema } from './selector.js';

/** As many as a pod may sensibly enrol; the agent's config has no smaller bound. */
export const POLICY_CONTAINERS_MAX = 64;
/** Conflicts listed in a policy's status; the rest are counted in conflictsOmitted. Keeps the object small. */
export const POLICY_CONFLICTS_MAX = 50;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** The rule the operator applies when several policies select one pod (docs/crds.md). */
export const RESOLUTION_RULE =
  'When several policies select one pod, the one with the highest spec.priority wins; on a tie the oldest (metadata.creationTimestamp), then the first by name. Only the winner applies, whole: its defaults and containers are never merged with another policy\'s.';

const SPEC: OpenApiSchema = {
  type: 'object',
  description: 'Which pods this policy configures, and how.',
  required: ['selector'],
  properties: {
    selector: labelSelectorSchema('The enrolled pods of this namespace that this policy configures.'),
    priority: {
      type: 'integer',
      format: 'int32',
      description: `Decides between policies that select the same pod. ${RESOLUTION_RULE} Default 0.`,
      // Bounds as well as the format: 1.20's API server does not enforce format int32.
      minimum: INT32_MIN,
      maximum: INT32_MAX,
      default: 0,
    },
    defaults: SETTINGS_SCHEMA,
    containers: {
      type: 'array',
      description: `Per-container settings over defaults, one entry per app container name (at most ${POLICY_CONTAINERS_MAX}): a field set here wins over defaults, then come the agent's flags, then the built-in defaults.`,
      maxItems: POLICY_CONTAINERS_MAX,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      items: CONTAINER_SCHEMA,
    },
    injection: {
      type: 'object',
      description:
        "Sidecar injection by the operator's mutating admission webhook (docs/injector.md): when enabled, a pod this policy selects (and wins) gets the fdstore sidecar when it is created, exactly as the chart's sidecar templates would add it; kubectl rollout restart brings it to running workloads. Pods are also injected when annotated fdstore.dev/inject: \"true\", and never when annotated \"false\". A container without an explicit command is not enrolled (its image's entrypoint is unknown to the webhook): set command, or annotate the pod fdstore.dev/entrypoint.NAME with it as a JSON list.",
      properties: {
        enabled: {
          type: 'boolean',
          description: 'Add the fdstore sidecar to the pods this policy selects when they are created. Default false: the policy configures only pods that carry the sidecar already (the chart\'s templates).',
          default: false,
        },
        containers: {
          type: 'array',
          description: `The app containers to enrol (put behind the launcher), by name; unset or empty: every container of the pod (spec.containers) that has a command. At most ${POLICY_CONTAINERS_MAX}.`,
          maxItems: POLICY_CONTAINERS_MAX,
          'x-kubernetes-list-type': 'set',
          items: { type: 'string', minLength: 1, maxLength: 63, pattern: DNS1123_LABEL_PATTERN },
        },
        probes: {
          type: 'boolean',
          description: "Also give each enrolled container a startupProbe and a readinessProbe on the agent's /readyz/NAME and a livenessProbe on /livez/NAME (the chart's sidecar.appProbes timings), where the container has none of its own. Only for apps that send READY=1: the startup probe waits for it. Default false.",
          default: false,
        },
      },
    },
  },
};

const CONFLICT: OpenApiSchema = {
  type: 'object',
  description: 'A pod this policy selects where another policy won.',
  required: ['pod', 'winner'],
  properties: {
    pod: podNameSchema('The pod (in this namespace).'),
    winner: policyNameSchema('The policy that applies to it instead.'),
  },
};

const STATUS: OpenApiSchema = {
  type: 'object',
  description: "What the operator made of this policy. Written by the operator's leader only.",
  properties: {
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      description: 'The metadata.generation this status describes: older than metadata.generation means the operator has not caught up with the last spec change.',
      minimum: 0,
    },
    conditions: conditionsSchema(
      'Accepted: True when the operator uses this spec; False, with a reason and a message, when it cannot (e.g. a matchLabels key that is not a label key, which the API server does not check).',
    ),
    pods: {
      type: 'integer',
      description: 'Enrolled pods this policy applies to: it selects them and won.',
      minimum: 0,
    },
    conflicts: {
      type: 'array',
      description: `Pods this policy selects where another policy won (${RESOLUTION_RULE}). At most ${POLICY_CONFLICTS_MAX}, by pod name; conflictsOmitted counts the rest.`,
      maxItems: POLICY_CONFLICTS_MAX,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['pod'],
      items: CONFLICT,
    },
    conflictsOmitted: {
      type: 'integer',
      description: 'Conflicts beyond those listed in conflicts.',
      minimum: 0,
    },
  },
};

export function fdStorePolicyCrd(): CustomResourceDefinition {
  return customResourceDefinition({
    kind: 'FdStorePolicy',
    plural: 'fdstorepolicies',
    shortName: 'fdp',
    description:
      "Settings for the fdstore agent of the pods it selects: systemd's service settings for the notify protocol and the file descriptor store (FileDescriptorStoreMax=, NotifyAccess=, WatchdogSec=, ...) and its socket units, per app container. The operator writes the settings of the policy that wins into each selected pod's fdstore.dev/config annotation; the agent reloads them live, as a daemon-reload does (the kubelet updates the file within a minute or two). See docs/crds.md.",
    name: { maxLength: POLICY_NAME_MAX, pattern: DNS1123_LABEL_PATTERN },
    required: ['spec'],
    properties: { spec: SPEC, status: STATUS },
    columns: [
      { name: 'Pods', type: 'integer', jsonPath: '.status.pods', description: 'Enrolled pods this policy applies to.' },
      {
        name: 'Accepted',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="Accepted")].status',
        description: 'Whether the operator uses this spec.',
      },
      { name: 'Priority', type: 'integer', jsonPath: '.spec.priority', description: 'Wins over policies of lower priority.', priority: 1 },
      AGE_COLUMN,
    ],
  });
}
