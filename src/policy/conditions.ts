/**
 * Condition operators: parsing `[ForAnyValue:|ForAllValues:]<Operator>[IfExists]`,
 * compiling policy values once, and evaluating against a request's context.
 *
 * Semantics (AWS IAM "Condition" reference):
 * - keys in one operator block are ANDed, and so are operator blocks;
 *   the values listed for one key are ORed.
 * - A negated operator (StringNotEquals, NotIpAddress, ArnNotLike, …) means "matches
 *   none of the values". When the key is absent from the request it evaluates to TRUE:
 *   AWS: "If the policy condition requires that the key is not matched, such as
 *   StringNotLike or ArnNotLike, and the right key is not present, the condition is
 *   true." This is what makes the classic DenyUnEncryptedObjectUploads policy deny an
 *   upload that carries no x-amz-server-side-encryption header at all.
 * - A positive operator with the key absent is false; `…IfExists` makes any operator
 *   but a ForAnyValue one true when the key is absent; Null tests presence only.
 * - ForAllValues: every request value satisfies the operator (true when the key is
 *   absent: the empty set). ForAnyValue: at least one does (false when absent, with
 *   IfExists too). With a negated operator the per-value test is "matches none of the
 *   policy values".
 * - Without a qualifier a multi-valued key behaves like ForAnyValue for positive
 *   operators and as "no request value matches" for negated ones.
 */
import { ArnGlob } from "./arn";
import { cidrContains, parseCidr, parseIp, type Cidr } from "./ip";
import { canonicalKey } from "./keys";
import { malformed } from "./malformed";
import type { Lookup } from "./types";
import { globMatcher, patternMatcher, Template, type PatternMatcher } from "./variables";

type Kind = "string" | "stringIgnoreCase" | "stringLike" | "numeric" | "date" | "bool" | "binary" | "ip" | "arn" | "null";
type Cmp = "eq" | "lt" | "lte" | "gt" | "gte";
export type Qualifier = "none" | "any" | "all";

interface OperatorSpec {
  readonly name: string;
  readonly kind: Kind;
  readonly negated: boolean;
  readonly cmp: Cmp;
}

const SPECS: readonly OperatorSpec[] = [
  ["StringEquals", "string", false],
  ["StringNotEquals", "string", true],
  ["StringEqualsIgnoreCase", "stringIgnoreCase", false],
  ["StringNotEqualsIgnoreCase", "stringIgnoreCase", true],
  ["StringLike", "stringLike", false],
  ["StringNotLike", "stringLike", true],
  ["NumericEquals", "numeric", false, "eq"],
  ["NumericNotEquals", "numeric", true, "eq"],
  ["NumericLessThan", "numeric", false, "lt"],
  ["NumericLessThanEquals", "numeric", false, "lte"],
  ["NumericGreaterThan", "numeric", false, "gt"],
  ["NumericGreaterThanEquals", "numeric", false, "gte"],
  ["DateEquals", "date", false, "eq"],
  ["DateNotEquals", "date", true, "eq"],
  ["DateLessThan", "date", false, "lt"],
  ["DateLessThanEquals", "date", false, "lte"],
  ["DateGreaterThan", "date", false, "gt"],
  ["DateGreaterThanEquals", "date", false, "gte"],
  ["Bool", "bool", false],
  ["BinaryEquals", "binary", false],
  ["IpAddress", "ip", false],
  ["NotIpAddress", "ip", true],
  ["ArnEquals", "arn", false],
  ["ArnLike", "arn", false],
  ["ArnNotEquals", "arn", true],
  ["ArnNotLike", "arn", true],
  ["Null", "null", false],
].map(([name, kind, negated, cmp]) => ({ name, kind, negated, cmp: cmp ?? "eq" }) as OperatorSpec);

/** Operator names are matched case-insensitively (lenient; AWS's own names are accepted as written). */
const BY_NAME = new Map(SPECS.map((s) => [s.name.toLowerCase(), s]));

export interface ParsedOperator {
  readonly spec: OperatorSpec;
  readonly qualifier: Qualifier;
  readonly ifExists: boolean;
}

export function parseOperator(operator: string): ParsedOperator | null {
  let rest = operator.toLowerCase();
  let qualifier: Qualifier = "none";
  if (rest.startsWith("foranyvalue:")) qualifier = "any";
  else if (rest.startsWith("forallvalues:")) qualifier = "all";
  if (qualifier !== "none") rest = rest.slice(rest.indexOf(":") + 1);
  let spec = BY_NAME.get(rest);
  let ifExists = false;
  if (!spec && rest.endsWith("ifexists")) {
    spec = BY_NAME.get(rest.slice(0, -"ifexists".length));
    ifExists = true;
    // "NullIfExists" is meaningless (Null already tests existence); AWS refuses it.
    if (spec?.kind === "null") return null;
  }
  return spec ? { spec, qualifier, ifExists } : null;
}

export interface CompiledCondition {
  /** As written in the policy, for messages. */
  readonly operator: string;
  /** Canonical base operator name, e.g. "StringEquals". */
  readonly base: string;
  readonly kind: Kind;
  readonly negated: boolean;
  readonly ifExists: boolean;
  readonly qualifier: Qualifier;
  /** Lowercase condition key. */
  readonly key: string;
  /** Policy values as strings, as written. */
  readonly values: readonly string[];
  /** True if some value contains a wildcard (for *Like operators) or a policy variable. */
  readonly variable: boolean;
  /** Does one request value match ANY of the policy values (the positive form)? */
  readonly test: (value: string, lookup: Lookup) => boolean;
}

export function compileCondition(operator: string, keyName: string, raw: unknown, allowVariables: boolean): CompiledCondition {
  const op = parseOperator(operator);
  if (!op) throw malformed(`Invalid Condition type : ${operator}`);
  const key = canonicalKey(keyName);
  if (!key) throw malformed(`Policy has an invalid condition key: ${keyName}`);
  const values = conditionValues(raw, operator, keyName);
  const { test, variable } = compileValues(op.spec, values, allowVariables, `${operator} ${keyName}`);
  return {
    operator,
    base: op.spec.name,
    kind: op.spec.kind,
    negated: op.spec.negated,
    ifExists: op.ifExists,
    qualifier: op.qualifier,
    key,
    values,
    variable,
    test,
  };
}

/** JSON scalars or a non-empty array of them; numbers and booleans compare as their text. */
function conditionValues(raw: unknown, operator: string, key: string): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw malformed(`Invalid Condition value for ${operator} ${key}: empty list`);
  return list.map((v) => {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw malformed(`Invalid Condition value for ${operator} ${key}: ${JSON.stringify(v)}`);
  });
}

type Test = (value: string, lookup: Lookup) => boolean;

function compileValues(spec: OperatorSpec, values: string[], allowVariables: boolean, where: string): { test: Test; variable: boolean } {
  const bad = (v: string): never => {
    throw malformed(`Invalid Condition value for ${where}: ${JSON.stringify(v)}`);
  };
  switch (spec.kind) {
    case "string":
    case "stringIgnoreCase":
    case "binary": {
      const fold = spec.kind === "stringIgnoreCase" ? (s: string) => s.toLowerCase() : (s: string) => s;
      if (spec.kind === "binary") for (const v of values) if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) bad(v);
      const templates = values.map((v) => Template.parse(v, allowVariables && spec.kind !== "binary"));
      if (!templates.some((t) => t.hasVariables)) {
        const set = new Set(values.map(fold));
        return { test: (v) => set.has(fold(v)), variable: false };
      }
      return {
        test: (v, lookup) => {
          const folded = fold(v);
          return templates.some((t) => {
            const r = t.resolveString(lookup);
            return r !== undefined && fold(r) === folded;
          });
        },
        variable: true,
      };
    }
    case "stringLike": {
      const matchers = values.map((v) => globMatcher(Template.parse(v, allowVariables)));
      return anyMatcher(matchers, values.some((v) => /[*?]/.test(v)));
    }
    case "arn": {
      const matchers = values.map((v) => patternMatcher(Template.parse(v, allowVariables), (t) => new ArnGlob(t)));
      return anyMatcher(matchers, values.some((v) => /[*?]/.test(v)));
    }
    case "numeric": {
      const nums = values.map((v) => parseNumber(v) ?? bad(v));
      return { test: (v) => compareAny(parseNumber(v), nums, spec.cmp), variable: false };
    }
    case "date": {
      const times = values.map((v) => parseDate(v) ?? bad(v));
      return { test: (v) => compareAny(parseDate(v), times, spec.cmp), variable: false };
    }
    case "bool":
    case "null": {
      const set = new Set(values.map((v) => v.toLowerCase()));
      for (const v of set) if (v !== "true" && v !== "false") bad(v);
      return { test: (v) => set.has(v.toLowerCase()), variable: false };
    }
    case "ip": {
      const cidrs: Cidr[] = values.map((v) => parseCidr(v.trim()) ?? bad(v));
      return {
        test: (v) => {
          const ip = parseIp(v.trim());
          return ip !== null && cidrs.some((c) => cidrContains(c, ip));
        },
        variable: false,
      };
    }
  }
}

function anyMatcher(matchers: readonly PatternMatcher[], wildcard: boolean): { test: Test; variable: boolean } {
  return {
    test: (v, lookup) => matchers.some((m) => m.test(v, lookup)),
    variable: wildcard || matchers.some((m) => m.hasVariables),
  };
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export function parseNumber(s: string): number | null {
  const t = s.trim();
  return NUMBER.test(t) ? Number(t) : null;
}

/** ISO 8601 (date, or date-time with optional seconds, fraction and zone) or epoch seconds. */
const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

export function parseDate(s: string): number | null {
  const t = s.trim();
  if (/^\d{1,12}(\.\d+)?$/.test(t)) return Number(t) * 1000;
  if (!ISO.test(t)) return null;
  // Date.parse needs "+hh:mm"; accept "+hhmm" too, and uppercase separators.
  const ms = Date.parse(t.toUpperCase().replace(/([+-]\d{2})(\d{2})$/, "$1:$2"));
  return Number.isNaN(ms) ? null : ms;
}

function compareAny(x: number | null, against: readonly number[], cmp: Cmp): boolean {
  if (x === null) return false;
  for (const y of against) {
    if (cmp === "eq" ? x === y : cmp === "lt" ? x < y : cmp === "lte" ? x <= y : cmp === "gt" ? x > y : x >= y) return true;
  }
  return false;
}

const EMPTY: readonly string[] = [];

export function conditionHolds(c: CompiledCondition, lookup: Lookup): boolean {
  const raw = lookup(c.key);
  const values = raw === undefined ? EMPTY : typeof raw === "string" ? [raw] : raw;
  if (c.kind === "null") {
    // {"Null": {"k": "true"}} holds when k is absent; "false" when present.
    return c.test(values.length === 0 ? "true" : "false", lookup);
  }
  if (values.length === 0) {
    if (c.qualifier === "all") return true;
    // ForAnyValue with no request value is false even with IfExists: AWS's set-operator rule
    // ("for no matching key or a null dataset, the condition returns false") wins over
    // IfExists, as AWS answers (an Allow with ForAnyValue:StringEqualsIfExists on an absent
    // aws:TagKeys does not apply) and iam-simulate models (test/unit/policy-differential).
    if (c.qualifier === "any") return false;
    return c.ifExists || c.negated;
  }
  const holds = (v: string) => c.test(v, lookup) !== c.negated;
  switch (c.qualifier) {
    case "all":
      return values.every(holds);
    case "any":
      return values.some(holds);
    case "none":
      return c.negated ? values.every(holds) : values.some(holds);
  }
}
