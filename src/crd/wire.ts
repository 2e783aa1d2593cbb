/**
 * Typed schema helpers that tie a status schema to the agent's wire format
 * (status/types.ts) at compile time: a schema built as `SchemaOf<T>` must have one
 * property per field of T, of T's JSON type. A field added to the wire format
 * without its schema does not build.
 *
 * Fields the agent reports as null are not `nullable` here, on purpose: the API
 * server (1.20 and later) prunes a null it is not told to keep, so the operator can
 * write the agent's JSON as it is and such a field is simply absent. A nullable field
 * would keep the null, but 1.20 then publishes it without a type, and `kubectl
 * explain` shows neither its type nor its fields.
 */
import type { OpenApiSchema } from '../config/openapi.js';

type JsonType<T> = T extends string
  ? 'string'
  : T extends number
    ? 'integer' | 'number'
    : T extends boolean
      ? 'boolean'
      : T extends readonly unknown[]
        ? 'array'
        : 'object';

/** A schema of the given JSON type that says nothing about null. */
export type Typed<J extends OpenApiSchema['type']> = Omit<OpenApiSchema, 'type' | 'nullable'> & { type: J };

export type FieldSchema<T> = Typed<JsonType<NonNullable<T>>> & { nullable?: never };

export type SchemaOf<T> = { [K in keyof T]-?: FieldSchema<T[K]> };

/** Text the operator cuts to this length when the agent's is longer (reasons, error messages). */
export const REASON_TEXT_MAX = 256;
export const ERROR_TEXT_MAX = 1024;
/** Versions, instance ids, fd types, phases: short tokens. */
export const TOKEN_MAX = 64;

export function count(description: string): Typed<'integer'> {
  return { type: 'integer', description, minimum: 0 };
}

export function text(description: string, maxLength = REASON_TEXT_MAX): Typed<'string'> {
  return { type: 'string', description, maxLength };
}

export function time(description: string): Typed<'string'> {
  return { type: 'string', format: 'date-time', description: `${description} RFC 3339.` };
}

/** Wire-format objects are written whole by the operator, but never `required`: an older agent lacks newer fields. */
export function object<T>(description: string, properties: SchemaOf<T>, required?: (keyof T & string)[]): Typed<'object'> {
  return { type: 'object', description, ...(required ? { required } : {}), properties: properties as Record<string, OpenApiSchema> };
}
