/**
 * Fuzzing bucket policies through PutBucketPolicy: policy-shaped JSON with random
 * versions, statements, effects, principals, actions, resources (with policy variables)
 * and conditions (every operator, IfExists / ForAllValues / ForAnyValue, odd values), plus
 * arbitrary JSON, text and oversized documents.
 *
 * Properties: a policy is either refused with a proper S3 error (MalformedPolicy) or
 * stored exactly as sent (GetBucketPolicy returns the same text, GetBucketPolicyStatus
 * answers); requests evaluated under an accepted policy — by the owner, a member, another
 * tenant and anonymously, reads, listings and writes — never get a 5xx, a read that
 * succeeds returns the sentinel's exact bytes, a write lands only where the case aimed,
 * and the sentinel is never changed.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TENANT_A, TENANT_B, allowPublicPolicies, createBucket, sameBytes, seedIdentities, send, uniqueBucket, type Who } from "../support/s3-harness";
import { checkResponse, expectOnlyKeys, fuzz, nastyString, writeSentinel, type Sentinel } from "./support";

const bucket = uniqueBucket("fz-pol");
let sentinel: Sentinel;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  // The fuzzer explores public policies too: Block Public Access would refuse them.
  await allowPublicPolicies("adminA", bucket);
  sentinel = await writeSentinel(bucket);
});

afterAll(async () => {
  await send("adminA", { method: "DELETE", bucket, query: { policy: "" } });
  await sentinel.check();
  await expectOnlyKeys(bucket, (k) => k === sentinel.key || k.startsWith("pol-put/"));
});

// ---- policy documents ---------------------------------------------------------------------------

const json = fc.jsonValue({ maxDepth: 3 });
const oneOrMany = <T,>(a: fc.Arbitrary<T>) => fc.oneof(a, fc.array(a, { maxLength: 4 }));

const principal = fc.oneof(
  fc.constant<unknown>("*"),
  fc.record({ AWS: oneOrMany(fc.constantFrom("*", TENANT_A, TENANT_B, `arn:aws:iam::${TENANT_A}:root`, `arn:aws:iam::${TENANT_B}:user/admin-b`, `arn:aws:iam::${TENANT_A}:user/*`, "123456789012", "arn:aws:iam::*:root", "", "arn:aws:iam:::", "arn:aws:sts::x:assumed-role/r/s")) }),
  fc.record({ CanonicalUser: oneOrMany(fc.constantFrom(TENANT_A, "*", "abc")) }),
  fc.record({ Service: fc.constantFrom("s3.amazonaws.com", "*") }),
  fc.record({ Federated: fc.constant("cognito-identity.amazonaws.com") }),
  json,
);

const action = oneOrMany(
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom("s3:*", "s3:GetObject", "s3:PutObject", "s3:Get*", "s3:*Object", "s3:DeleteObject", "s3:ListBucket", "s3:PutBucketPolicy", "s3:GetBucketPolicy", "*", "s3:ListAllMyBuckets", "s3:GetObjectVersion") },
    { weight: 1, arbitrary: fc.constantFrom("s3:Unknown", "iam:*", "s3:get*", "s3:", "S3:GETOBJECT", "s3:?etObject", "s3:PutObject ", "kms:Decrypt") },
    { weight: 1, arbitrary: nastyString(20) },
  ),
);

const resource = oneOrMany(
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(`arn:aws:s3:::${bucket}/*`, `arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/pol-put/*`, `arn:aws:s3:::${bucket}/sentinel/*`, "*", "arn:aws:s3:::*", "arn:aws:s3:::other/*") },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        `arn:aws:s3:::${bucket}/\${aws:username}/*`, `arn:aws:s3:::${bucket}/\${aws:userid}`, `arn:aws:s3:::${bucket}/\${*}`, `arn:aws:s3:::${bucket}/\${?}\${$}`,
        `arn:aws:s3:::${bucket}/\${aws:unknown}`, `arn:aws:s3:::${bucket}/\${`, `arn:aws:s3:::${bucket}/\${aws:username, 'default'}`, "arn:aws:s3:::", "arn:aws:s3:us-east-1::b", "arn:aws:iam::x:root", "s3:::b",
      ),
    },
    { weight: 1, arbitrary: nastyString(20) },
  ),
);

const operator = fc
  .tuple(
    fc.constantFrom("", "", "", "ForAllValues:", "ForAnyValue:", "forallvalues:", "Bogus:"),
    fc.constantFrom(
      "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike", "NumericEquals", "NumericNotEquals",
      "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals",
      "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
      "stringequals", "Unknown", "",
    ),
    fc.constantFrom("", "", "IfExists", "ifexists"),
  )
  .map(([set, op, suffix]) => set + op + suffix);

const conditionKey = fc.constantFrom(
  "aws:SourceIp", "aws:SecureTransport", "aws:CurrentTime", "aws:EpochTime", "aws:username", "aws:userid", "aws:PrincipalAccount", "aws:PrincipalArn", "aws:Referer",
  "aws:UserAgent", "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id", "s3:prefix", "s3:max-keys", "s3:delimiter", "s3:signatureversion",
  "s3:authType", "s3:TlsVersion", "s3:signatureAge", "s3:ExistingObjectTag/x", "s3:RequestObjectTagKeys", "aws:SourceVpc", "aws:unknown", "s3:unknown", "x", "",
);

const conditionValue = fc.oneof(
  fc.constantFrom(
    "10.0.0.0/8", "0.0.0.0/0", "::/0", "2001:db8::/129", "256.1.1.1", "1.2.3.4/33", "1.2.3.4", "true", "false", "TRUE", "2026-01-01T00:00:00Z", "2026-13-45", "1700000000",
    "0", "-1", "1e309", "NaN", "AES256", "aws:kms", "*", "?", "${aws:username}", "${*}", "arn:aws:iam::*:root", "", "AWS4-HMAC-SHA256", "REST-QUERY-STRING", "POST",
  ),
  fc.integer().map((n) => n as unknown),
  fc.boolean().map((b) => b as unknown),
  json,
);

const condition = fc.dictionary(operator, fc.oneof(fc.dictionary(conditionKey, oneOrMany(conditionValue), { maxKeys: 3 }), json), { maxKeys: 3 });

const statement = fc.record(
  {
    Sid: fc.oneof(fc.constantFrom("s1", "s1", "", "has space"), fc.integer().map((n) => n as unknown)),
    Effect: fc.oneof({ weight: 6, arbitrary: fc.constantFrom("Allow", "Deny") }, { weight: 1, arbitrary: fc.constantFrom("allow", "Maybe", "") }, { weight: 1, arbitrary: json }),
    Principal: principal,
    NotPrincipal: principal,
    Action: action,
    NotAction: action,
    Resource: resource,
    NotResource: resource,
    Condition: condition,
    Extra: json,
  },
  { requiredKeys: [] },
).map((s) => {
  // Mostly the usual shape: Effect, Principal, Action, Resource, sometimes a Condition.
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) if (k !== "Extra" || Math.random() < 0.05) out[k] = v;
  return out;
});

/** Valid-looking statements (valid values only, so most compile and get evaluated). */
const goodPrincipal = fc.oneof(
  fc.constant<unknown>("*"),
  fc.record({ AWS: oneOrMany(fc.constantFrom("*", TENANT_A, TENANT_B, `arn:aws:iam::${TENANT_A}:root`, `arn:aws:iam::${TENANT_B}:user/admin-b`, `arn:aws:iam::${TENANT_A}:user/member-a`)) }),
);
const goodAction = oneOrMany(fc.constantFrom("s3:*", "s3:GetObject", "s3:PutObject", "s3:Get*", "s3:*Object", "s3:ListBucket", "s3:GetBucketPolicy", "s3:DeleteObject"));
const goodResource = fc.oneof({ weight: 2, arbitrary: fc.constant([`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`]) }, { weight: 2, arbitrary: fc.constant("arn:aws:s3:::*") }, { weight: 3, arbitrary: oneOrManyGood() });
function oneOrManyGood() {
  return oneOrMany(fc.constantFrom(`arn:aws:s3:::${bucket}/*`, `arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/pol-put/*`, `arn:aws:s3:::${bucket}/sentinel/*`, `arn:aws:s3:::${bucket}/\${aws:username}/*`, "arn:aws:s3:::*"));
}
const goodCondition = fc.dictionary(
  fc.constantFrom("StringEquals", "StringNotEquals", "StringLike", "Bool", "IpAddress", "NotIpAddress", "NumericLessThan", "DateGreaterThan", "Null", "StringEqualsIfExists", "ForAnyValue:StringLike"),
  fc.dictionary(fc.constantFrom("aws:SourceIp", "aws:SecureTransport", "aws:CurrentTime", "aws:username", "s3:x-amz-server-side-encryption", "s3:prefix", "s3:max-keys", "s3:authType", "aws:PrincipalAccount"), oneOrMany(fc.constantFrom("10.0.0.0/8", "0.0.0.0/0", "true", "false", "2020-01-01T00:00:00Z", "5", "AES256", "sentinel/", TENANT_A, "REST-HEADER")), { minKeys: 1, maxKeys: 2 }),
  { minKeys: 1, maxKeys: 2 },
);
const goodStatement = fc.record({
  Effect: fc.constantFrom("Allow", "Deny"),
  Principal: goodPrincipal,
  Action: goodAction,
  Resource: goodResource,
  Condition: fc.option(goodCondition, { nil: undefined, freq: 2 }),
});

/** Valid-looking statements with one field taken from the wider (often invalid) pools. */
const usualStatement = fc.tuple(goodStatement, fc.oneof({ weight: 12, arbitrary: fc.constant("none") }, { weight: 1, arbitrary: fc.constantFrom("Principal", "Action", "Resource", "Condition") }), principal, action, resource, condition).map(([st, field, p, a, r, c]) => {
  const out: Record<string, unknown> = { ...st };
  if (field === "Principal") out.Principal = p;
  else if (field === "Action") out.Action = a;
  else if (field === "Resource") out.Resource = r;
  else if (field === "Condition") out.Condition = c;
  return out;
});

const policyDoc = fc
  .record(
    {
      Version: fc.oneof({ weight: 12, arbitrary: fc.constantFrom("2012-10-17", "2008-10-17") }, { weight: 1, arbitrary: json }),
      Id: fc.oneof({ weight: 8, arbitrary: fc.string() }, { weight: 1, arbitrary: json }),
      Statement: fc.oneof(
        { weight: 5, arbitrary: fc.array(usualStatement, { minLength: 1, maxLength: 3 }) },
        { weight: 2, arbitrary: fc.array(statement, { maxLength: 3 }) },
        { weight: 1, arbitrary: fc.oneof(usualStatement, json) },
      ),
    },
    { requiredKeys: ["Statement"] },
  )
  .map((d) => JSON.stringify(d, (_k, v: unknown) => (v === undefined ? undefined : v)));

const policyText = fc.oneof(
  { weight: 8, arbitrary: policyDoc },
  { weight: 1, arbitrary: json.map((j) => JSON.stringify(j)) },
  { weight: 1, arbitrary: nastyString(200) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "",
      " {}",
      "{}",
      '{"Statement": []}',
      `{"Version":"2012-10-17","Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::${bucket}/*"}}`,
      `{"Statement":${"[".repeat(5000)}${"]".repeat(5000)}}`,
      `{"Version":"2012-10-17","Statement":[${Array.from({ length: 200 }, (_, i) => `{"Sid":"s${i}","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::${bucket}/x${"y".repeat(80)}"}`).join(",")}]}`,
      "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}}\u0000",
    ),
  },
);

// ---- requests under a policy ----------------------------------------------------------------------

const WHO: Array<Who | "anonymous"> = ["adminA", "memberA", "adminB", "anonymous"];

async function probe(who: Who | "anonymous", kind: "get" | "head" | "list" | "put" | "get-policy", n: number): Promise<void> {
  const as: Who = who === "anonymous" ? "adminA" : who;
  const anonymous = who === "anonymous";
  switch (kind) {
    case "get": {
      const c = await checkResponse(await send(as, { method: "GET", bucket, key: sentinel.key, anonymous }), "GET", `${who} GET under policy`);
      if (c.status === 200) expect(sameBytes(c.bytes, sentinel.body)).toBe(true);
      else expect(c.code).toBe("AccessDenied");
      return;
    }
    case "head":
      await checkResponse(await send(as, { method: "HEAD", bucket, key: sentinel.key, anonymous }), "HEAD", `${who} HEAD under policy`);
      return;
    case "list": {
      const c = await checkResponse(await send(as, { method: "GET", bucket, query: { "list-type": "2", prefix: "sentinel/" }, anonymous }), "GET", `${who} LIST under policy`);
      if (c.status !== 200) expect(c.code).toBe("AccessDenied");
      return;
    }
    case "put": {
      const key = `pol-put/${who}-${n}`;
      const c = await checkResponse(await send(as, { method: "PUT", bucket, key, body: "written under a policy", anonymous }), "PUT", `${who} PUT under policy`);
      // Left in place (a policy may deny even the owner's DELETE); afterAll allows pol-put/.
      if (c.status !== 200) expect(c.code).toBe("AccessDenied");
      return;
    }
    case "get-policy":
      await checkResponse(await send(as, { method: "GET", bucket, query: { policy: "" }, anonymous }), "GET", `${who} GetBucketPolicy`);
      return;
  }
}

describe("bucket policies", () => {
  it("PutBucketPolicy: refused with a proper error, or stored exactly and evaluated without a 5xx", async () => {
    let accepted = 0;
    let n = 0;
    await fuzz(
      "policy/put-and-evaluate",
      fc.tuple(policyText, fc.array(fc.tuple(fc.constantFrom(...WHO), fc.constantFrom("get" as const, "head" as const, "list" as const, "put" as const, "get-policy" as const)), { minLength: 1, maxLength: 3 })),
      async ([text, probes]) => {
        const put = await checkResponse(await send("adminA", { method: "PUT", bucket, query: { policy: "" }, body: text }), "PUT", `policy ${JSON.stringify(text.slice(0, 400))}`);
        if (put.status !== 204) {
          expect(put.code, `policy ${JSON.stringify(text.slice(0, 400))}`).toBe("MalformedPolicy");
          return;
        }
        accepted++;
        const get = await checkResponse(await send("adminA", { method: "GET", bucket, query: { policy: "" } }), "GET");
        expect(get.status).toBe(200);
        expect(new TextDecoder().decode(get.bytes), "the stored policy differs from the one sent").toBe(text);
        const status = await checkResponse(await send("adminA", { method: "GET", bucket, query: { policyStatus: "" } }), "GET");
        expect(status.status).toBe(200);
        for (const [who, kind] of probes) await probe(who, kind, n++);
      },
      3,
    );
    console.log(`[fuzz] policy/put-and-evaluate: ${accepted} policies accepted`);
    expect(accepted, "no policy was ever accepted: the generator misses the success path").toBeGreaterThan(0);
    // The last policy may deny the owner's reads: remove it (tenant_admin always may) first.
    expect((await send("adminA", { method: "DELETE", bucket, query: { policy: "" } })).status).toBe(204);
    await sentinel.check();
  }, 1_800_000);
});
