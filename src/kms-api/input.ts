import { KmsErrors, validationError } from "./errors";

/**
 * Request members, checked against the constraints of the KMS service model (botocore's
 * kms/2014-11-01): a missing required member or a value outside its bounds is a
 * ValidationException, a value of the wrong JSON type a SerializationException.
 */
export type Input = Record<string, unknown>;

export function parseInput(text: string): Input {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw KmsErrors.Serialization("Start of structure or map found where not expected.");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw KmsErrors.Serialization("Start of structure or map found where not expected.");
  return value as Input;
}

interface StringRule {
  min?: number;
  max?: number;
  pattern?: RegExp;
  enum?: readonly string[];
}

export function optionalString(input: Input, name: string, rule: StringRule = {}): string | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw KmsErrors.Serialization(`STRING_VALUE can not be converted to ${typeof value} at '${name}'`);
  if (rule.min !== undefined && value.length < rule.min) throw validationError(name, value, `Member must have length greater than or equal to ${rule.min}`);
  if (rule.max !== undefined && value.length > rule.max) throw validationError(name, value, `Member must have length less than or equal to ${rule.max}`);
  if (rule.pattern && !rule.pattern.test(value)) throw validationError(name, value, `Member must satisfy regular expression pattern: ${rule.pattern.source}`);
  if (rule.enum && !rule.enum.includes(value)) throw validationError(name, value, `Member must satisfy enum value set: [${rule.enum.join(", ")}]`);
  return value;
}

export function requiredString(input: Input, name: string, rule: StringRule = {}): string {
  const value = optionalString(input, name, rule);
  if (value === undefined) throw validationError(name, null, "Member must not be null");
  return value;
}

export function optionalInt(input: Input, name: string, min: number, max: number): number | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) throw KmsErrors.Serialization(`NUMBER_VALUE can not be converted to an integer at '${name}'`);
  if (value < min) throw validationError(name, value, `Member must have value greater than or equal to ${min}`);
  if (value > max) throw validationError(name, value, `Member must have value less than or equal to ${max}`);
  return value;
}

export function optionalBool(input: Input, name: string): boolean | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw KmsErrors.Serialization(`BOOLEAN_VALUE can not be converted at '${name}'`);
  return value;
}

/** KeyId members: 1-2048 characters. */
export const keyIdRule: StringRule = { min: 1, max: 2048 };
/** Markers are opaque to clients; ours are the last item's sort key. */
export const markerRule: StringRule = { min: 1, max: 1024 };
