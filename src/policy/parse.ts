/**
 * PutBucketPolicy validation and compilation. Every refusal is 400 MalformedPolicy with
 * AWS's message where we know it, naming the offending field or value.
 */
import { actionLevel, ALL_ACTIONS, bucketArn, type ActionLevel } from "./actions";
import { KNOWN_UNIMPLEMENTED_ACTIONS } from "./known-actions";
import type { CompiledPolicy, CompiledStatement } from "./compiled";
import { compileCondition, parseOperator, type CompiledCondition } from "./conditions";
import { Glob } from "./glob";
import { malformed } from "./malformed";
import { compilePrincipal } from "./principal";
import { globMatcher, Template, type PatternMatcher } from "./variables";

/** AWS: bucket policies are limited to 20 KB. */
export const MAX_POLICY_BYTES = 20 * 1024;

const VERSIONS = new Set(["2012-10-17", "2008-10-17"]);
const POLICY_FIELDS = new Set(["Version", "Id", "Statement"]);
const STATEMENT_FIELDS = new Set([
  "Sid",
  "Effect",
  "Principal",
  "NotPrincipal",
  "Action",
  "NotAction",
  "Resource",
  "NotResource",
  "Condition",
]);
const NOT_JSON = "Policies must be valid JSON and the first byte must be '{'";

export function parsePolicy(text: string, bucket: string): CompiledPolicy {
  if (new TextEncoder().encode(text).length > MAX_POLICY_BYTES) {
    throw malformed(`Policy exceeds the maximum allowed document size (${MAX_POLICY_BYTES} bytes).`);
  }
  if (text[0] !== "{") throw malformed(NOT_JSON);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw malformed(NOT_JSON);
  }
  return compilePolicy(doc as Record<string, unknown>, bucket);
}

/** Compiles an already-parsed JSON document (the top level is known to be an object). */
export function compilePolicy(doc: Record<string, unknown>, bucket: string): CompiledPolicy {
  for (const k of Object.keys(doc)) if (!POLICY_FIELDS.has(k)) throw malformed(`Unknown field ${k}`);
  // AWS reads a policy without Version as the 2008-10-17 language.
  const version = doc.Version === undefined ? "2008-10-17" : doc.Version;
  if (typeof version !== "string" || !VERSIONS.has(version)) {
    throw malformed(`Invalid policy Version ${JSON.stringify(version)}: must be 2012-10-17 or 2008-10-17`);
  }
  if (doc.Id !== undefined && typeof doc.Id !== "string") throw malformed("Policy Id must be a string");
  if (doc.Statement === undefined) throw malformed("Missing required field Statement");
  const list = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  if (list.length === 0) throw malformed("Policy has no statements: Statement is empty");
  const sids = new Set<string>();
  // Policy variables exist only in the 2012-10-17 language.
  const variables = version === "2012-10-17";
  const statements = list.map((s: unknown) => compileStatement(s, bucket, variables, sids));
  return { version: version as CompiledPolicy["version"], id: doc.Id as string | undefined, statements };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Exactly one of `name` / `Not<name>`. */
function oneOf(st: Record<string, unknown>, name: string): { value: unknown; not: boolean } {
  const has = st[name] !== undefined;
  const hasNot = st[`Not${name}`] !== undefined;
  if (has && hasNot) throw malformed(`Statement cannot contain both ${name} and Not${name}`);
  if (!has && !hasNot) throw malformed(`Missing required field ${name}`);
  return has ? { value: st[name], not: false } : { value: st[`Not${name}`], not: true };
}

function stringList(value: unknown, field: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || list.some((v) => typeof v !== "string" || v === "")) {
    throw malformed(`${field} must be a non-empty string or a non-empty list of strings`);
  }
  return list as string[];
}

function compileStatement(raw: unknown, bucket: string, variables: boolean, sids: Set<string>): CompiledStatement {
  if (!isObject(raw)) throw malformed("Statement must be an object");
  for (const k of Object.keys(raw)) if (!STATEMENT_FIELDS.has(k)) throw malformed(`Unknown field ${k}`);

  const sid = raw.Sid;
  if (sid !== undefined) {
    if (typeof sid !== "string") throw malformed("Sid must be a string");
    if (sids.has(sid)) throw malformed(`Statement IDs (SID) must be unique: ${sid}`);
    sids.add(sid);
  }

  if (raw.Effect === undefined) throw malformed("Missing required field Effect");
  if (raw.Effect !== "Allow" && raw.Effect !== "Deny") throw malformed(`Invalid effect: ${JSON.stringify(raw.Effect)}`);

  const principal = oneOf(raw, "Principal");
  // IAM: "NotPrincipal must be used with Effect Deny"; AWS refuses the policy.
  if (principal.not && raw.Effect === "Allow") throw malformed("Invalid principal in policy");
  const action = oneOf(raw, "Action");
  const resource = oneOf(raw, "Resource");

  const actionNames = stringList(action.value, action.not ? "NotAction" : "Action");
  const actionPatterns = actionNames.map((a) => compileAction(a));
  const covered = new Set(ALL_ACTIONS.filter((a) => actionPatterns.some((g) => g.test(a))));
  const actions = action.not ? new Set(ALL_ACTIONS.filter((a) => !covered.has(a))) : covered;

  const resourceNames = stringList(resource.value, resource.not ? "NotResource" : "Resource");
  const resources = resourceNames.map((r) => compileResource(r, bucket, variables));

  if (!action.not && !resource.not) {
    // AWS refuses e.g. s3:ListBucket (bucket-level) listed only with `bucket/*`.
    actionPatterns.forEach((g, i) => {
      const widened = resources.map((r) => r.widened);
      const applies =
        ALL_ACTIONS.some((a) => g.test(a) && appliesToAny(actionLevel(a), widened, bucket)) ||
        [...KNOWN_UNIMPLEMENTED_ACTIONS].some(([a, level]) => g.test(a) && appliesToAny(level, widened, bucket));
      if (!applies) throw malformed(`Action does not apply to any resource(s) in statement: ${actionNames[i]}`);
    });
  }

  return {
    sid,
    effect: raw.Effect,
    principal: compilePrincipal(principal.value),
    notPrincipal: principal.not,
    actions,
    actionPatterns,
    notAction: action.not,
    resources: resources.map((r) => r.matcher),
    notResource: resource.not,
    conditions: compileConditions(raw.Condition, variables),
  };
}

const ACTION_NAME = /^s3:[A-Za-z*?]+$/i;

function compileAction(name: string): Glob {
  if (name !== "*" && !ACTION_NAME.test(name)) throw malformed(`Policy has invalid action: ${name}`);
  const g = Glob.of(name, true);
  if (!ALL_ACTIONS.some((a) => g.test(a)) && ![...KNOWN_UNIMPLEMENTED_ACTIONS.keys()].some((a) => g.test(a))) {
    throw malformed(`Policy has invalid action: ${name}`);
  }
  return g;
}

const RESOURCE_PREFIX = "arn:aws:s3:::";

interface ResourceEntry {
  readonly matcher: PatternMatcher;
  /** The pattern with variables widened to `*`: what it could match for some request. */
  readonly widened: Glob;
}

/** Must be able to name this bucket or an object in it (wildcards and variables allowed). */
function compileResource(name: string, bucket: string, variables: boolean): ResourceEntry {
  const template = Template.parse(name, variables);
  const widened = new Glob(template.widenedTokens());
  const bucketResource = bucketArn(bucket);
  const ok =
    name.startsWith(RESOURCE_PREFIX) && (widened.test(bucketResource) || widened.canMatchPrefix(`${bucketResource}/`));
  if (!ok) throw malformed(`Policy has invalid resource: ${name}`);
  return { matcher: globMatcher(template), widened };
}

function appliesToAny(level: ActionLevel, resources: readonly Glob[], bucket: string): boolean {
  if (level === "service") return false;
  const b = bucketArn(bucket);
  return resources.some((r) => (level === "bucket" ? r.test(b) : r.canMatchPrefix(`${b}/`)));
}

function compileConditions(raw: unknown, variables: boolean): CompiledCondition[] {
  if (raw === undefined) return [];
  if (!isObject(raw)) throw malformed("Condition must be an object");
  const out: CompiledCondition[] = [];
  for (const [operator, block] of Object.entries(raw)) {
    if (!parseOperator(operator)) throw malformed(`Invalid Condition type : ${operator}`);
    if (!isObject(block)) throw malformed(`Condition ${operator} must map condition keys to values`);
    for (const [key, values] of Object.entries(block)) out.push(compileCondition(operator, key, values, variables));
  }
  return out;
}
