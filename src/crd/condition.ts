/**
 * metav1.Condition (KUBE-NOTES §4, as controller-gen generates it for
 * apimachinery's type), with fdstore's own descriptions, and the conditions list:
 * a list-map keyed by `type`, so server-side apply merges one condition at a time.
 */
import type { OpenApiSchema } from '../config/openapi.js';

/** Kubernetes' limits for metav1.Condition. */
export const CONDITION_TYPE_MAX = 316;
export const CONDITION_REASON_MAX = 1024;
export const CONDITION_MESSAGE_MAX = 32768;
/** Each kind defines at most three conditions; room for more without a new version. */
export const CONDITIONS_MAX = 16;

const CONDITION_TYPE_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$';
const CONDITION_REASON_PATTERN = '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$';

export const CONDITION_SCHEMA: OpenApiSchema = {
  type: 'object',
  description: 'One aspect of the object\'s state (a metav1.Condition), as `kubectl describe` lists it.',
  required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  properties: {
    type: {
      type: 'string',
      description: 'Which aspect this condition reports, in CamelCase (the types this kind uses are listed under conditions).',
      maxLength: CONDITION_TYPE_MAX,
      pattern: CONDITION_TYPE_PATTERN,
    },
    status: {
      type: 'string',
      description: 'True, False or Unknown.',
      enum: ['True', 'False', 'Unknown'],
    },
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      description: "The object's metadata.generation this condition was computed for: older than metadata.generation means it is out of date.",
      minimum: 0,
    },
    lastTransitionTime: {
      type: 'string',
      format: 'date-time',
      description: 'When status last changed (not when the condition was last written), RFC 3339.',
    },
    reason: {
      type: 'string',
      description: 'Why, in one CamelCase word that programs may match on (e.g. NoSuchContainer).',
      minLength: 1,
      maxLength: CONDITION_REASON_MAX,
      pattern: CONDITION_REASON_PATTERN,
    },
    message: {
      type: 'string',
      description: 'Why, for people: details such as which field or container; may be empty.',
      maxLength: CONDITION_MESSAGE_MAX,
    },
  },
};

/** The conditions list of a status; `meaning` lists the types this kind uses and what True means for each. */
export function conditionsSchema(meaning: string): OpenApiSchema {
  return {
    type: 'array',
    description: `The object's conditions, one per type. ${meaning}`,
    maxItems: CONDITIONS_MAX,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
    items: CONDITION_SCHEMA,
  };
}
