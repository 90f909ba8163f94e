import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { ALL_ACTIONS, S3_ACTIONS, authorize, bucketArn, evaluate, objectArn, parsePolicy, type CompiledPolicy, type PolicyRequest, type TenantPrincipal } from "../../src/policy";
import { Glob } from "../../src/policy/glob";
import { cidrContains, parseCidr, parseIp } from "../../src/policy/ip";

// Property runs are CPU-heavy (fc.pre filters many candidates); keep them off the 5 s default
// so a loaded CI machine does not fail them on time alone.
vi.setConfig({ testTimeout: 60_000 });

const BUCKET = "bkt";
const OWNER = "domainiddomainiddomainiddoma0001";
const OTHER = "otherotherotherotherotherother02";
const alice: TenantPrincipal = { tenantId: OWNER, userName: "alice", userId: "AIDAALICE", isTenantAdmin: true };
const bob: TenantPrincipal = { tenantId: OWNER, userName: "bob", userId: "AIDABOB", isTenantAdmin: false };
const mallory: TenantPrincipal = { tenantId: OTHER, userName: "mallory", userId: "AIDAMAL", isTenantAdmin: true };

/** Actions a bucket policy can name (ListAllMyBuckets applies to no bucket resource). */
const ACTIONS = ALL_ACTIONS.filter((a) => S3_ACTIONS[a] !== "service");
const KEYS = ["a/b", "abc", "x.txt", "a/c.txt", "z", "a"];

type Json = Record<string, unknown>;

const principalArb = fc.constantFrom<unknown>(
  "*",
  { AWS: "*" },
  { AWS: OWNER },
  { AWS: `arn:aws:iam::${OWNER}:user/alice` },
  { AWS: `arn:aws:iam::${OWNER}:user/*` },
  { AWS: [OTHER, `arn:aws:iam::${OWNER}:root`] },
  { CanonicalUser: OTHER },
);
const actionArb = fc.oneof(
  fc.constantFrom<unknown>("*", "s3:*", "s3:Get*", "s3:Put*", "s3:*Object", "s3:List*"),
  fc.subarray(ACTIONS, { minLength: 1, maxLength: 4 }),
);
const objectResources = ["arn:aws:s3:::bkt/*", "arn:aws:s3:::bkt/a/*", "arn:aws:s3:::bkt/*.txt", "arn:aws:s3:::bkt/a?c", "arn:aws:s3:::bkt/z"];
// Always the bucket plus at least one object pattern, so every action applies.
const resourceArb = fc.subarray(objectResources, { minLength: 1 }).map((objs) => [bucketArn(BUCKET), ...objs]);
const CONDITIONS: [string, string, unknown][] = [
  ["StringEquals", "s3:x-amz-server-side-encryption", "aws:kms"],
  ["StringNotEquals", "s3:x-amz-server-side-encryption", "aws:kms"],
  ["Bool", "aws:SecureTransport", "true"],
  ["IpAddress", "aws:SourceIp", "10.0.0.0/8"],
  ["NotIpAddress", "aws:SourceIp", ["10.0.0.0/8", "2001:db8::/32"]],
  ["NumericLessThan", "s3:max-keys", "100"],
  ["StringLike", "s3:prefix", "a*"],
  ["ForAllValues:StringEquals", "s3:RequestObjectTagKeys", ["a", "b"]],
  ["ForAnyValue:StringEquals", "s3:RequestObjectTagKeys", "b"],
  ["Null", "s3:x-amz-server-side-encryption", "true"],
  ["StringEqualsIfExists", "aws:username", "alice"],
  ["DateLessThan", "aws:CurrentTime", "2030-01-01T00:00:00Z"],
];
const conditionArb = fc.subarray(CONDITIONS).map((list) => {
  const out: Record<string, Json> = {};
  for (const [op, key, v] of list) (out[op] ??= {})[key] = v;
  return list.length ? out : undefined;
});

const statementArb = (effect?: "Allow" | "Deny") =>
  fc
    .record({
      effect: effect ? fc.constant(effect) : fc.constantFrom("Allow", "Deny"),
      notPrincipal: fc.boolean(),
      notAction: fc.boolean(),
      notResource: fc.boolean(),
      principal: principalArb,
      action: actionArb,
      resource: resourceArb,
      condition: conditionArb,
    })
    .map((s): Json => ({
      Effect: s.effect,
      // AWS refuses NotPrincipal with Allow (MalformedPolicy): only Deny statements use it.
      [s.notPrincipal && s.effect === "Deny" ? "NotPrincipal" : "Principal"]: s.principal,
      [s.notAction ? "NotAction" : "Action"]: s.action,
      [s.notResource ? "NotResource" : "Resource"]: s.resource,
      ...(s.condition ? { Condition: s.condition } : {}),
    }));

const compile = (statements: Json[]) => parsePolicy(JSON.stringify({ Version: "2012-10-17", Statement: statements }), BUCKET);

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const requestArb: fc.Arbitrary<PolicyRequest> = fc
  .record({
    action: fc.constantFrom(...ACTIONS),
    key: fc.constantFrom(...KEYS),
    principal: fc.constantFrom<PolicyRequest["principal"]>(alice, bob, mallory, "anonymous"),
    sse: maybe(fc.constantFrom("aws:kms", "AES256")),
    secure: maybe(fc.constantFrom("true", "false")),
    ip: maybe(fc.constantFrom("10.1.2.3", "192.0.2.1", "2001:db8::1")),
    maxKeys: maybe(fc.constantFrom("5", "1000")),
    prefix: maybe(fc.constantFrom("a/", "b/")),
    tags: maybe(fc.subarray(["a", "b", "c"])),
    now: maybe(fc.constantFrom("2024-01-01T00:00:00Z", "2031-01-01T00:00:00Z")),
  })
  .map((r) => ({
    action: r.action,
    resource: S3_ACTIONS[r.action] === "bucket" ? bucketArn(BUCKET) : objectArn(BUCKET, r.key),
    principal: r.principal,
    context: {
      "s3:x-amz-server-side-encryption": r.sse,
      "aws:securetransport": r.secure,
      "aws:sourceip": r.ip,
      "s3:max-keys": r.maxKeys,
      "s3:prefix": r.prefix,
      "s3:requestobjecttagkeys": r.tags,
      "aws:currenttime": r.now,
    },
  }));

/** A Deny statement that certainly matches `r`, in one of several equivalent spellings. */
function matchingDeny(r: PolicyRequest, form: number): Json {
  const tenant = r.principal === "anonymous" ? null : r.principal;
  const principals: unknown[] = ["*", { AWS: "*" }];
  if (tenant) principals.push({ AWS: tenant.tenantId }, { AWS: `arn:aws:iam::${tenant.tenantId}:user/${tenant.userName}` }, { AWS: `arn:aws:iam::${tenant.tenantId}:root` });
  const actions: unknown[] = [r.action, "s3:*", "*", [r.action.toUpperCase(), r.action]];
  const resources: unknown[] = [r.resource, "arn:aws:s3:::bkt*", [r.resource, "arn:aws:s3:::bkt/zzz"]];
  // A condition that holds for every request: the key is never present.
  const conditions: unknown[] = [undefined, { Null: { "aws:SourceVpc": "true" } }, { StringNotEquals: { "aws:SourceVpce": "vpce-1" } }];
  const pick = <T>(xs: T[], i: number) => xs[i % xs.length] as T;
  const condition = pick(conditions, form >> 8);
  return {
    Effect: "Deny",
    Principal: pick(principals, form),
    Action: pick(actions, form >> 3),
    Resource: pick(resources, form >> 5),
    ...(condition ? { Condition: condition } : {}),
  };
}

/** The decision from each statement alone: Deny if any denies, else Allow if any allows. */
function oracle(statements: Json[], r: PolicyRequest) {
  const single = statements.map((s) => evaluate(compile([s]), r));
  return single.includes("Deny") ? "Deny" : single.includes("Allow") ? "Allow" : "NoMatch";
}

const RUNS = { numRuns: 400 };

describe("policy evaluation properties", () => {
  it("adding a matching explicit Deny always makes the decision Deny, for owner and non-owner", () => {
    fc.assert(
      fc.property(fc.array(statementArb(), { maxLength: 8 }), requestArb, fc.nat(), fc.nat(2048), (statements, r, at, form) => {
        const withDeny = [...statements];
        withDeny.splice(at % (statements.length + 1), 0, matchingDeny(r, form));
        const p = compile(withDeny);
        expect(evaluate(p, r)).toBe("Deny");
        expect(authorize({ policy: p, request: r, isOwner: true })).toBe(false);
        expect(authorize({ policy: p, request: r, isOwner: false })).toBe(false);
      }),
      RUNS,
    );
  });

  it("Allow never overrides Deny: more Allow statements leave a Deny a Deny", () => {
    fc.assert(
      fc.property(fc.array(statementArb(), { minLength: 1, maxLength: 6 }), fc.array(statementArb("Allow"), { minLength: 1, maxLength: 6 }), requestArb, (statements, allows, r) => {
        fc.pre(evaluate(compile(statements), r) === "Deny");
        expect(evaluate(compile([...allows, ...statements]), r)).toBe("Deny");
        expect(evaluate(compile([...statements, ...allows]), r)).toBe("Deny");
      }),
      { numRuns: 200 },
    );
  });

  it("the decision is the combination of each statement's own decision, in any order", () => {
    fc.assert(
      fc.property(fc.array(statementArb(), { minLength: 1, maxLength: 6 }), requestArb, (statements, r) => {
        const expected = oracle(statements, r);
        expect(evaluate(compile(statements), r)).toBe(expected);
        expect(evaluate(compile([...statements].reverse()), r)).toBe(expected);
      }),
      RUNS,
    );
  });

  it("authorize = no Deny, and (owner or explicit Allow)", () => {
    fc.assert(
      fc.property(fc.array(statementArb(), { minLength: 1, maxLength: 6 }), requestArb, fc.boolean(), (statements, r, isOwner) => {
        const p = compile(statements);
        const d = evaluate(p, r);
        expect(authorize({ policy: p, request: r, isOwner })).toBe(d !== "Deny" && (isOwner || d === "Allow"));
      }),
      RUNS,
    );
  });

  it("removing all statements gives NoMatch (and only the owner passes)", () => {
    fc.assert(
      fc.property(fc.array(statementArb(), { minLength: 1, maxLength: 6 }), requestArb, fc.boolean(), (statements, r, isOwner) => {
        const empty: CompiledPolicy = { ...compile(statements), statements: [] };
        expect(evaluate(empty, r)).toBe("NoMatch");
        expect(evaluate(null, r)).toBe("NoMatch");
        expect(authorize({ policy: empty, request: r, isOwner })).toBe(isOwner);
      }),
      RUNS,
    );
  });

  it("every generated policy round-trips through the validator", () => {
    fc.assert(
      fc.property(fc.array(statementArb(), { minLength: 1, maxLength: 10 }), (statements) => {
        expect(compile(statements).statements).toHaveLength(statements.length);
      }),
      RUNS,
    );
  });
});

describe("matcher properties (against reference implementations)", () => {
  const reference = (pattern: string, ignoreCase: boolean) =>
    new RegExp(`^${[...pattern].map((c) => (c === "*" ? "[\\s\\S]*" : c === "?" ? "[\\s\\S]" : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("")}$`, ignoreCase ? "i" : "");
  const alphabet = fc.constantFrom("a", "b", "/", ".", "*", "?", "A", "\n");
  const text = fc.array(fc.constantFrom("a", "b", "/", ".", "A", "*", "?", "\n"), { maxLength: 12 }).map((a) => a.join(""));

  it("Glob agrees with an anchored RegExp translation", () => {
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 10 }).map((a) => a.join("")), text, fc.boolean(), (pattern, subject, ic) => {
        expect(Glob.of(pattern, ic).test(subject)).toBe(reference(pattern, ic).test(subject));
      }),
      { numRuns: 3000 },
    );
  });

  it("canMatchPrefix agrees with trying every completion", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("a", "b", "*", "?"), { maxLength: 6 }).map((a) => a.join("")), fc.array(fc.constantFrom("a", "b"), { maxLength: 4 }).map((a) => a.join("")), (pattern, prefix) => {
        const g = Glob.of(pattern);
        // Completions up to the pattern's length over {a,b} suffice for this alphabet.
        const suffixes = [""];
        for (let n = 1; n <= pattern.length; n++) for (const s of suffixes.filter((x) => x.length === n - 1)) suffixes.push(`${s}a`, `${s}b`);
        expect(g.canMatchPrefix(prefix)).toBe(suffixes.some((s) => g.test(prefix + s)));
      }),
      { numRuns: 1000 },
    );
  });

  it("IPv4 CIDR containment agrees with integer arithmetic", () => {
    const octets = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
    fc.assert(
      fc.property(octets, octets, fc.nat(32), (net, ip, prefix) => {
        const toInt = (o: number[]) => o.reduce((n, b) => n * 256 + b, 0);
        const cidr = parseCidr(`${net.join(".")}/${prefix}`);
        const addr = parseIp(ip.join("."));
        const shift = 2 ** (32 - prefix);
        const expected = Math.floor(toInt(net) / shift) === Math.floor(toInt(ip) / shift);
        expect(cidr && addr && cidrContains(cidr, addr)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
