/**
 * The shape of an apiextensions.k8s.io/v1 CustomResourceDefinition as fdstore
 * writes it, and the one builder both kinds use: group fdstore.dev, one version
 * v1alpha1 (served and stored), namespaced, a status subresource, the `fdstore`
 * category. Pure: objects in, objects out; crds/*.yaml are rendered from these.
 */
import type { OpenApiSchema } from '../config/openapi.js';

export const GROUP = 'fdstore.dev';
export const VERSION = 'v1alpha1';
/**
 * `kubectl get fdstore-dev` lists both kinds. Not `fdstore`: kubectl expands a
 * category before it matches a singular name, so `kubectl describe fdstore POD` would
 * mean both kinds and fail ("you must specify only one resource"); Istio names its
 * category after its domain the same way (istio-io). Never `all`: `kubectl get all`
 * stays the workloads'.
 */
export const CATEGORY = 'fdstore-dev';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  /** 1 = only with `kubectl get -o wide`. */
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    scope: 'Namespaced';
    versions: {
      name: string;
      served: true;
      storage: true;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: OpenApiSchema };
    }[];
  };
}

export interface KindSpec {
  kind: string;
  plural: string;
  shortName: string;
  /** The object's own description (`kubectl explain KIND`). */
  description: string;
  /** Restrictions on metadata.name, the only metadata field a CRD schema may restrict. */
  name: { maxLength: number; pattern: string };
  /** spec and status (and nothing else: apiVersion, kind and metadata are added here). */
  properties: Record<string, OpenApiSchema>;
  required?: string[];
  columns: PrinterColumn[];
}

/** Declared explicitly: once a CRD lists printer columns, AGE is no longer added by the server. */
export const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};

export function customResourceDefinition(k: KindSpec): CustomResourceDefinition {
  const plural = k.plural;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: k.kind,
        listKind: `${k.kind}List`,
        plural,
        singular: k.kind.toLowerCase(),
        shortNames: [k.shortName],
        categories: [CATEGORY],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: k.columns,
          schema: { openAPIV3Schema: rootSchema(k) },
        },
      ],
    },
  };
}

function rootSchema(k: KindSpec): OpenApiSchema {
  return {
    type: 'object',
    description: k.description,
    ...(k.required ? { required: k.required } : {}),
    properties: {
      apiVersion: {
        type: 'string',
        description: `The versioned schema of this object: ${GROUP}/${VERSION}.`,
      },
      kind: { type: 'string', description: `The kind of this object: ${k.kind}.` },
      // The API server allows only name and generateName here, and nothing else on
      // metadata itself (not even a description): kubectl explain shows ObjectMeta's.
      metadata: { type: 'object', properties: { name: { type: 'string', ...k.name } } },
      ...k.properties,
    },
  };
}
