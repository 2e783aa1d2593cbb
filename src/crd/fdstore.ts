/**
 * FdStore: one per enrolled pod, named after it and owned by it (ownerReferences, so
 * the garbage collector removes it with the pod). No spec: nothing about it is
 * desired, it only shows. Its status is the agent's /status (status/types.ts) per
 * container, plus what the operator knows: the policy that won, the conditions and
 * the totals the printer columns show. Written by the operator's leader only.
 */
import type { OpenApiSchema } from '../config/openapi.js';
import type { AgentInfo, ConfigState, KeeperState } from '../status/types.js';
import { conditionsSchema } from './condition.js';
import { CONTAINER_STATUS_SCHEMA } from './container-status.js';
import { AGE_COLUMN, customResourceDefinition, type CustomResourceDefinition } from './crd.js';
import { DNS1123_SUBDOMAIN_PATTERN, POD_NAME_MAX, policyNameSchema } from './names.js';
import { POLICY_CONTAINERS_MAX } from './policy.js';
import { ERROR_TEXT_MAX, TOKEN_MAX, count, object, text, time, type SchemaOf } from './wire.js';

/** Containers listed; a pod with more enrolled containers shows the first ones and counts the rest. */
export const FDSTORE_CONTAINERS_MAX = POLICY_CONTAINERS_MAX;
/** Other matching policies named in an FdStore (the losers, best first). */
export const OTHER_POLICIES_MAX = 16;
const SHA256_HEX = '^[0-9a-f]{64}$';

type Policy = NonNullable<ConfigState['policy']>;
type ConfigError = NonNullable<ConfigState['error']>;

const POLICY: SchemaOf<Policy> = {
  name: policyNameSchema('The FdStorePolicy (in this namespace).'),
  generation: count('Its metadata.generation the config came from.'),
};

const KEEPER: SchemaOf<KeeperState> = {
  connected: { type: 'boolean', description: 'The agent is connected to the keeper now (false: it retries every half second, and what is stored meanwhile is sent when it is back).' },
  agentRestarts: count('Agents that served this pod with this keeper before this one: restarts of the sidecar the store survived (0 on a first start).'),
  adoptedFds: count('Stored fds and listen sockets this agent took over from the keeper when it started.'),
  storeLost: {
    type: 'boolean',
    description: 'True when an earlier agent served this pod and the keeper held nothing when this one started (the keeper restarted too): the stores were lost (the StoreLost condition).',
  },
  reseeds: count('Times the keeper went away and the agent sent it every fd again (a keeper restart alone loses nothing).'),
  unmirrored: count('Fds stored but not mirrored because the keeper was full (its --max-fds): they do not survive an agent restart.'),
};

const AGENT: SchemaOf<AgentInfo> = {
  version: text("fdstore's version in the sidecar.", TOKEN_MAX),
  startedAt: time('When this agent process started.'),
  instance: text('Random per agent process: a new value means the agent restarted (with a keeper its stores survive that; see keeper).', TOKEN_MAX),
  keeper: object('The keeper container that holds a copy of the stores across agent restarts (sidecar.keeper.enabled); absent when the pod has none.', KEEPER),
};

const CONFIG_ERROR: SchemaOf<ConfigError> = {
  message: text(`Why it could not be used (cut to ${ERROR_TEXT_MAX} characters).`, ERROR_TEXT_MAX),
  hash: { type: 'string', description: 'sha256 (hex) of the refused file.', pattern: SHA256_HEX, maxLength: 64 },
  at: time('When the agent refused it.'),
};

const CONFIG: SchemaOf<Omit<ConfigState, 'policy'>> = {
  hash: {
    type: 'string',
    description: "sha256 (hex) of the config file in use (the pod's fdstore.dev/config annotation); absent when the agent runs from its flags only.",
    pattern: SHA256_HEX,
    maxLength: 64,
  },
  loadedAt: time('When the config in use was loaded.'),
  error: object(
    'The last config file the agent could not use (it kept the config above, as systemd keeps a unit whose drop-in does not parse); absent when none.',
    CONFIG_ERROR,
  ),
  reloads: count('Config files applied live since the agent started (a daemon-reload each).'),
  rejected: count('Config files refused since the agent started.'),
};

const STATUS: OpenApiSchema = {
  type: 'object',
  description: "The pod's fd stores as its agent reports them (what fdstore ls shows in the sidecar), and what the operator knows about the pod.",
  properties: {
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      description: 'metadata.generation when this status was written (an FdStore has no spec, so it does not move).',
      minimum: 0,
    },
    lastUpdate: time("When the operator last wrote this status from the agent's report."),
    readySummary: {
      type: 'string',
      description: 'READY/TOTAL: containers whose readiness endpoint answers ready, and containers, as kubectl get pods counts (the READY column).',
      maxLength: 16,
      pattern: '^[0-9]+/[0-9]+$',
    },
    stored: count('Fds stored, all containers together (the FDS column).'),
    restores: count('Restores served since the agent started, all containers together (the RESTORES column).'),
    policy: object('The FdStorePolicy whose settings the agent has applied; absent when none does.', POLICY),
    otherPolicies: {
      type: 'array',
      description: `Other FdStorePolicies that select this pod but lost to the one that applies (best first, at most ${OTHER_POLICIES_MAX}): when several policies select one pod, the highest spec.priority wins, then the oldest, then the first by name.`,
      maxItems: OTHER_POLICIES_MAX,
      'x-kubernetes-list-type': 'atomic',
      items: policyNameSchema('A policy name.'),
    },
    agent: object('The fdstore agent (the sidecar) of this pod.', AGENT),
    config: object("The agent's configuration.", CONFIG),
    containers: {
      type: 'array',
      description: `Each enrolled app container (at most ${FDSTORE_CONTAINERS_MAX}; containersOmitted counts the rest).`,
      maxItems: FDSTORE_CONTAINERS_MAX,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      items: CONTAINER_STATUS_SCHEMA,
    },
    containersOmitted: count('Containers beyond those listed.'),
    conditions: conditionsSchema(
      'Ready: True when every container is ready (readySummary). ConfigApplied: True when the agent runs the configuration of the policy that wins, at its current generation; False while the kubelet has not delivered it yet or when the agent refused it (config.error). StoreLost: True when the agent restarted (a new agent.instance) and the fds it held were lost; lastTransitionTime says when.',
    ),
  },
};

export function fdStoreCrd(): CustomResourceDefinition {
  return customResourceDefinition({
    kind: 'FdStore',
    plural: 'fdstores',
    shortName: 'fds',
    description:
      "The fd stores of one enrolled pod (systemd-analyze fdstore and systemctl status for its app containers), named after the pod and removed with it. The operator keeps it current from the pod's fdstore agent; nothing in it is to be edited.",
    name: { maxLength: POD_NAME_MAX, pattern: DNS1123_SUBDOMAIN_PATTERN },
    properties: { status: STATUS },
    columns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.readySummary', description: 'Ready containers / containers.' },
      { name: 'FDs', type: 'integer', jsonPath: '.status.stored', description: 'Fds stored, all containers together.' },
      { name: 'Restores', type: 'integer', jsonPath: '.status.restores', description: 'Restores served since the agent started.' },
      { name: 'Policy', type: 'string', jsonPath: '.status.policy.name', description: 'The FdStorePolicy applied.' },
      AGE_COLUMN,
    ],
  });
}
