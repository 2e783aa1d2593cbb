/**
 * The subset of apiextensions.k8s.io/v1 JSONSchemaProps that fdstore's schemas use:
 * the settings schema (config/schema.ts) and the CRDs built from it (src/crd/).
 * Plain data, no validator: the agent reads field names from it and nothing else,
 * so it never loads a JSON-schema library.
 *
 * Structural-schema rules (KEP-1002) the generators keep and test/crd checks: every
 * property has a type (or x-kubernetes-int-or-string) and a description; the
 * schemas inside anyOf carry value checks only (no type, no description, no default).
 */
export interface OpenApiSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: 'date-time' | 'int32' | 'int64';
  properties?: Record<string, OpenApiSchema>;
  /** A map: the schema of every value (matchLabels). */
  additionalProperties?: OpenApiSchema;
  maxProperties?: number;
  items?: OpenApiSchema;
  required?: string[];
  enum?: (string | number | boolean)[];
  default?: unknown;
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  anyOf?: OpenApiSchema[];
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  /** atomic: server-side apply replaces the object whole (a label selector, as in core types). */
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
}

/** Every key above, checked by the compiler: what test/crd allows in a schema object (a typo such as maxItem fails). */
const KEYS: Record<keyof OpenApiSchema, true> = {
  type: true, description: true, format: true, properties: true, additionalProperties: true, maxProperties: true, items: true,
  required: true, enum: true, default: true, nullable: true, minimum: true, maximum: true, minLength: true,
  maxLength: true, pattern: true, minItems: true, maxItems: true, anyOf: true,
  'x-kubernetes-int-or-string': true, 'x-kubernetes-list-type': true, 'x-kubernetes-list-map-keys': true,
  'x-kubernetes-map-type': true,
};
export const OPENAPI_KEYS: ReadonlySet<string> = new Set(Object.keys(KEYS));
