/**
 * metav1.LabelSelector over pods, as the API server can check it without CEL: keys
 * and values of matchExpressions by pattern, and the operator/values pairing (In and
 * NotIn need values, Exists and DoesNotExist take none) by anyOf. Keys of
 * matchLabels cannot be checked by an OpenAPI v3 schema (no propertyNames): the
 * operator refuses such a policy with Accepted=False.
 */
import type { OpenApiSchema } from '../config/openapi.js';

/** A qualified name: an optional DNS-1123 subdomain prefix (at most 253) and '/', then a name of at most 63. */
export const LABEL_KEY_MAX = 253 + 1 + 63;
export const LABEL_KEY_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$';
export const LABEL_VALUE_MAX = 63;
export const LABEL_VALUE_PATTERN = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';
/** Bounds of our own: a selector longer than this selects by something that is not a label. */
export const SELECTOR_EXPRESSIONS_MAX = 16;
export const SELECTOR_VALUES_MAX = 64;
export const SELECTOR_LABELS_MAX = 64;

const LABEL_VALUE: OpenApiSchema = {
  type: 'string',
  maxLength: LABEL_VALUE_MAX,
  pattern: LABEL_VALUE_PATTERN,
};

const EXPRESSION: OpenApiSchema = {
  type: 'object',
  description: 'One requirement on a pod label.',
  required: ['key', 'operator'],
  properties: {
    key: {
      type: 'string',
      description: 'The label key, e.g. app or app.kubernetes.io/name.',
      minLength: 1,
      maxLength: LABEL_KEY_MAX,
      pattern: LABEL_KEY_PATTERN,
    },
    operator: {
      type: 'string',
      description: 'In: the label has one of values; NotIn: it has none of them (or is absent); Exists: the label is set; DoesNotExist: it is not.',
      enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
    },
    values: {
      type: 'array',
      description: `The label values for In and NotIn (at least one, at most ${SELECTOR_VALUES_MAX}); must be empty or absent for Exists and DoesNotExist.`,
      maxItems: SELECTOR_VALUES_MAX,
      'x-kubernetes-list-type': 'atomic',
      items: LABEL_VALUE,
    },
  },
  anyOf: [
    { required: ['values'], properties: { operator: { enum: ['In', 'NotIn'] }, values: { minItems: 1 } } },
    { properties: { operator: { enum: ['Exists', 'DoesNotExist'] }, values: { maxItems: 0 } } },
  ],
};

export function labelSelectorSchema(description: string): OpenApiSchema {
  return {
    type: 'object',
    description: `${description} A metav1.LabelSelector, as in a Deployment's spec.selector: every matchLabels entry and every matchExpressions requirement must hold (AND). An empty selector ({}) selects every enrolled pod of the namespace.`,
    'x-kubernetes-map-type': 'atomic',
    properties: {
      matchLabels: {
        type: 'object',
        description: `Labels the pod must have with exactly these values (key: value; at most ${SELECTOR_LABELS_MAX}).`,
        maxProperties: SELECTOR_LABELS_MAX,
        additionalProperties: LABEL_VALUE,
      },
      matchExpressions: {
        type: 'array',
        description: `Requirements on pod labels, all of which must hold (at most ${SELECTOR_EXPRESSIONS_MAX}).`,
        maxItems: SELECTOR_EXPRESSIONS_MAX,
        'x-kubernetes-list-type': 'atomic',
        items: EXPRESSION,
      },
    },
  };
}
