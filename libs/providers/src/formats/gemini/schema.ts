import type { JsonObject, JsonValue } from '../../canonical.js';

/** Gemini's `Schema` keys in proto (snake_case) form, and the JSON Schema keyword each stands for. */
const KEYWORDS: Record<string, string> = {
  any_of: 'anyOf',
  max_items: 'maxItems',
  min_items: 'minItems',
  min_length: 'minLength',
  max_length: 'maxLength',
  min_properties: 'minProperties',
  max_properties: 'maxProperties',
};

/**
 * Gemini's OpenAPI-subset `Schema` (used by `parameters` and `responseSchema`, with upper-case types
 * such as `OBJECT` and `nullable`) → JSON Schema, the canonical form of tool parameters.
 * `propertyOrdering` is Gemini-only and dropped.
 */
export function geminiSchemaToJsonSchema(schema: JsonObject): JsonObject {
  const out: JsonObject = {};
  let nullable = false;
  for (const [rawKey, value] of Object.entries(schema)) {
    const key = KEYWORDS[rawKey] ?? rawKey;
    if (key === 'nullable') nullable = value === true;
    else if (key === 'propertyOrdering' || key === 'property_ordering') continue;
    else if (key === 'type' && typeof value === 'string') {
      if (value !== 'TYPE_UNSPECIFIED') out['type'] = value.toLowerCase();
    } else if (key === 'properties' && isObject(value)) {
      const properties: JsonObject = {};
      for (const [name, property] of Object.entries(value)) {
        properties[name] = isObject(property) ? geminiSchemaToJsonSchema(property) : property;
      }
      out['properties'] = properties;
    } else if (key === 'items' && isObject(value)) out['items'] = geminiSchemaToJsonSchema(value);
    else if (key === 'anyOf' && Array.isArray(value)) {
      out['anyOf'] = value.map((item) => (isObject(item) ? geminiSchemaToJsonSchema(item) : item));
    } else out[key] = value;
  }
  const type = out['type'];
  if (nullable && typeof type === 'string') out['type'] = [type, 'null'];
  return out;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
