import { describe, expect, it } from "vitest";
import { S3Error } from "../../src/errors";
import {
  ALL_ACTIONS,
  S3_ACTIONS,
  authorize,
  bucketArn,
  buildConditionContext,
  evaluate,
  objectArn,
  parsePolicy,
  type ConditionContext,
  type PolicyPrincipal,
  type PolicyRequest,
  type TenantPrincipal,
} from "../../src/policy";

const BUCKET = "bkt";
const OWNER = "domainiddomainiddomainiddoma0001";
const OTHER = "otherotherotherotherotherother02";
const alice: TenantPrincipal = { tenantId: OWNER, userName: "alice", userId: "AIDAALICE", isTenantAdmin: true };
const bob: TenantPrincipal = { tenantId: OWNER, userName: "bob", userId: "AIDABOB", isTenantAdmin: false };
const mallory: TenantPrincipal = { tenantId: OTHER, userName: "mallory", userId: "AIDAMAL", isTenantAdmin: true };

type Statement = Record<string, unknown>;

function policy(statements: Statement[], version = "2012-10-17") {
  return parsePolicy(JSON.stringify({ Version: version, Statement: statements }), BUCKET);
}

function allow(extra: Statement = {}): Statement {
  return { Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/*`, ...extra };
}

function req(over: Partial<PolicyRequest> = {}): PolicyRequest {
  return {
    action: "s3:GetObject",
    resource: objectArn(BUCKET, "k"),
    principal: alice,
    context: {},
    ...over,
  };
}

function refusal(fn: () => unknown): S3Error {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(S3Error);
    return e as S3Error;
  }
  throw new Error("expected MalformedPolicy, nothing was thrown");
}

describe("actions list", () => {
  it("marks every implemented action with its resource level", () => {
    expect(ALL_ACTIONS).toHaveLength(36);
    expect(S3_ACTIONS["s3:GetObjectTagging"]).toBe("object");
    expect(S3_ACTIONS["s3:PutObject"]).toBe("object");
    expect(S3_ACTIONS["s3:ListBucket"]).toBe("bucket");
    expect(S3_ACTIONS["s3:GetBucketPolicyStatus"]).toBe("bucket");
    expect(S3_ACTIONS["s3:ListMultipartUploadParts"]).toBe("object");
    expect(S3_ACTIONS["s3:ListAllMyBuckets"]).toBe("service");
    // The bucket settings (lifecycle, Block Public Access, ownership controls, tags) and ACL writes.
    expect(S3_ACTIONS["s3:PutLifecycleConfiguration"]).toBe("bucket");
    expect(S3_ACTIONS["s3:GetBucketPublicAccessBlock"]).toBe("bucket");
    expect(S3_ACTIONS["s3:PutBucketOwnershipControls"]).toBe("bucket");
    expect(S3_ACTIONS["s3:GetBucketTagging"]).toBe("bucket");
    expect(S3_ACTIONS["s3:PutObjectAcl"]).toBe("object");
    expect(bucketArn("b")).toBe("arn:aws:s3:::b");
    expect(objectArn("b", "a/b c")).toBe("arn:aws:s3:::b/a/b c");
  });
});

describe("OBS DenyUnEncryptedObjectUploads policy (verbatim)", () => {
  // Exactly as printed on the OBS SSE-KMS API page, including its layout.
  const OBS = `{

"Version":"2008-10-17",

"Id":"PutObjPolicy",

"Statement":[{

"Sid":"DenyUnEncryptedObjectUploads",

"Effect":"Deny",

"Principal":"*",

"Action":"s3:PutObject",

"Resource":"arn:aws:s3:::YourBucket/*",

"Condition":{

"StringNotEquals":{

"s3:x-amz-server-side-encryption":"aws:kms"

}

}

}

]

}`;
  const p = parsePolicy(OBS, "YourBucket");
  const put = (headers: Record<string, string>, action = "s3:PutObject"): PolicyRequest => ({
    action,
    resource: objectArn("YourBucket", "photo.jpg"),
    principal: alice,
    context: buildConditionContext({ headers, principal: alice, secureTransport: true }),
  });

  it("parses with its Id and Sid", () => {
    expect(p.version).toBe("2008-10-17");
    expect(p.id).toBe("PutObjPolicy");
    expect(p.statements[0]?.sid).toBe("DenyUnEncryptedObjectUploads");
  });
  it("denies PutObject with AES256", () => {
    expect(evaluate(p, put({ "x-amz-server-side-encryption": "AES256" }))).toBe("Deny");
  });
  it("denies PutObject with no SSE header at all", () => {
    expect(evaluate(p, put({ "content-type": "image/jpeg" }))).toBe("Deny");
    expect(authorize({ policy: p, request: put({}), isOwner: true })).toBe(false);
  });
  it("does not deny PutObject with aws:kms", () => {
    const r = put({ "x-amz-server-side-encryption": "aws:kms" });
    expect(evaluate(p, r)).toBe("NoMatch");
    expect(authorize({ policy: p, request: r, isOwner: true })).toBe(true);
    // Not a grant either: another tenant still has no Allow.
    expect(authorize({ policy: p, request: { ...r, principal: mallory }, isOwner: false })).toBe(false);
  });
  it("does not affect GetObject", () => {
    expect(evaluate(p, put({}, "s3:GetObject"))).toBe("NoMatch");
    expect(authorize({ policy: p, request: put({}, "s3:GetObject"), isOwner: true })).toBe(true);
  });
  it("is case-sensitive on the value, as StringNotEquals is", () => {
    expect(evaluate(p, put({ "x-amz-server-side-encryption": "AWS:KMS" }))).toBe("Deny");
  });
});

describe("evaluate / authorize", () => {
  const both = policy([allow({ Sid: "A" }), { ...allow({ Sid: "D" }), Effect: "Deny", Principal: { AWS: `arn:aws:iam::${OWNER}:user/bob` } }]);

  it("a matching Deny wins over a matching Allow", () => {
    expect(evaluate(both, req({ principal: bob }))).toBe("Deny");
    expect(evaluate(both, req({ principal: alice }))).toBe("Allow");
  });
  it("no policy or no matching statement is NoMatch", () => {
    expect(evaluate(null, req())).toBe("NoMatch");
    expect(evaluate(both, req({ action: "s3:PutObject" }))).toBe("NoMatch");
  });
  it.each<[string, PolicyPrincipal, boolean, "Allow" | "Deny" | "NoMatch", boolean]>([
    ["owner, no statement", alice, true, "NoMatch", true],
    ["owner, allowed", alice, true, "Allow", true],
    ["owner, denied", bob, true, "Deny", false],
    ["other tenant, no statement", mallory, false, "NoMatch", false],
    ["other tenant, allowed", mallory, false, "Allow", true],
    ["anonymous, allowed", "anonymous", false, "Allow", true],
    ["anonymous, no statement", "anonymous", false, "NoMatch", false],
  ])("authorize: %s", (_name, principal, isOwner, decision, expected) => {
    const p = decision === "NoMatch" ? policy([allow({ Action: "s3:PutObject" })]) : both;
    const r = req({ principal });
    expect(evaluate(p, r)).toBe(decision);
    expect(authorize({ policy: p, request: r, isOwner })).toBe(expected);
  });
  it("authorize with ownerOnly (SSE-KMS objects) never lets a policy grant outsiders", () => {
    const p = policy([allow()]);
    expect(authorize({ policy: p, request: req({ principal: mallory }), isOwner: false, ownerOnly: true })).toBe(false);
    expect(authorize({ policy: p, request: req({ principal: "anonymous" }), isOwner: false, ownerOnly: true })).toBe(false);
    expect(authorize({ policy: p, request: req({ principal: alice }), isOwner: true, ownerOnly: true })).toBe(true);
    expect(authorize({ policy: null, request: req({ principal: alice }), isOwner: true, ownerOnly: true })).toBe(true);
  });
});

describe("Principal / NotPrincipal", () => {
  const who = { alice, bob, mallory, anonymous: "anonymous" as const };
  type Who = keyof typeof who;
  const cases: [string, unknown, Who[]][] = [
    ["*", "*", ["alice", "bob", "mallory", "anonymous"]],
    ['{"AWS":"*"}', { AWS: "*" }, ["alice", "bob", "mallory", "anonymous"]],
    ["tenant id", { AWS: OWNER }, ["alice", "bob"]],
    ["tenant root ARN", { AWS: `arn:aws:iam::${OWNER}:root` }, ["alice", "bob"]],
    ["user ARN", { AWS: `arn:aws:iam::${OWNER}:user/alice` }, ["alice"]],
    ["user ARN wildcard", { AWS: `arn:aws:iam::${OWNER}:user/a*` }, ["alice"]],
    ["user ARN ? wildcard", { AWS: `arn:aws:iam::${OWNER}:user/b?b` }, ["bob"]],
    ["any tenant's root", { AWS: "arn:aws:iam::*:root" }, ["alice", "bob", "mallory"]],
    ["list", { AWS: [OTHER, `arn:aws:iam::${OWNER}:user/bob`] }, ["bob", "mallory"]],
    ["12-digit AWS account", { AWS: "123456789012" }, []],
    ["CanonicalUser = tenant id", { CanonicalUser: OTHER }, ["mallory"]],
    ["Service principal never matches here", { Service: "cloudtrail.amazonaws.com" }, []],
    ["mixed types", { AWS: `arn:aws:iam::${OTHER}:user/mallory`, CanonicalUser: OWNER }, ["alice", "bob", "mallory"]],
  ];
  it.each(cases)("Principal %s", (_n, principal, matches) => {
    const p = policy([allow({ Principal: principal })]);
    for (const name of Object.keys(who) as Who[]) {
      expect([name, evaluate(p, req({ principal: who[name] }))]).toEqual([name, matches.includes(name) ? "Allow" : "NoMatch"]);
    }
  });
  it.each(cases)("NotPrincipal %s applies to exactly the others", (_n, principal, matches) => {
    const p = policy([{ ...allow(), Effect: "Deny", Principal: undefined, NotPrincipal: principal }]);
    for (const name of Object.keys(who) as Who[]) {
      expect([name, evaluate(p, req({ principal: who[name] }))]).toEqual([name, matches.includes(name) ? "NoMatch" : "Deny"]);
    }
  });
  it("Deny everyone except one user (the common NotPrincipal pattern)", () => {
    const p = policy([{ Effect: "Deny", NotPrincipal: { AWS: `arn:aws:iam::${OWNER}:user/alice` }, Action: "s3:*", Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`] }]);
    expect(authorize({ policy: p, request: req({ principal: alice }), isOwner: true })).toBe(true);
    expect(authorize({ policy: p, request: req({ principal: bob }), isOwner: true })).toBe(false);
    expect(authorize({ policy: p, request: req({ principal: "anonymous", action: "s3:ListBucket", resource: bucketArn(BUCKET) }), isOwner: false })).toBe(false);
  });
});

describe("Action / NotAction", () => {
  const cases: [unknown, string[], string[]][] = [
    ["*", ["s3:GetObject", "s3:PutObject", "s3:DeleteObjectVersion"], []],
    ["s3:*", ["s3:GetObject", "s3:AbortMultipartUpload"], []],
    ["s3:Get*", ["s3:GetObject", "s3:GetObjectVersion"], ["s3:PutObject", "s3:DeleteObject"]],
    ["S3:GETOBJECT", ["s3:GetObject"], ["s3:GetObjectVersion"]],
    ["s3:*Object", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], ["s3:GetObjectVersion"]],
    ["s3:?etObject", ["s3:GetObject"], ["s3:PutObject"]],
    [["s3:PutObject", "s3:DeleteObject"], ["s3:PutObject", "s3:DeleteObject"], ["s3:GetObject"]],
  ];
  it.each(cases)("Action %j", (action, yes, no) => {
    const p = policy([allow({ Action: action })]);
    for (const a of yes) expect([a, evaluate(p, req({ action: a }))]).toEqual([a, "Allow"]);
    for (const a of no) expect([a, evaluate(p, req({ action: a }))]).toEqual([a, "NoMatch"]);
  });
  it.each(cases)("NotAction %j is the complement", (action, yes, no) => {
    const p = policy([{ ...allow(), Action: undefined, NotAction: action }]);
    for (const a of yes) expect([a, evaluate(p, req({ action: a }))]).toEqual([a, "NoMatch"]);
    for (const a of no) expect([a, evaluate(p, req({ action: a }))]).toEqual([a, "Allow"]);
  });
  it("NotAction also covers actions outside the implemented list", () => {
    const p = policy([{ ...allow(), Action: undefined, NotAction: "s3:GetObject" }]);
    expect(evaluate(p, req({ action: "s3:GetObjectAcl" }))).toBe("Allow");
    expect(evaluate(policy([allow({ Action: "s3:Get*" })]), req({ action: "s3:GetObjectAcl" }))).toBe("Allow");
  });
});

describe("Resource / NotResource", () => {
  const o = (k: string) => objectArn(BUCKET, k);
  const cases: [unknown, string[], string[]][] = [
    [`arn:aws:s3:::${BUCKET}/*`, [o("a"), o("a/b/c"), o("")], [bucketArn(BUCKET), "arn:aws:s3:::bkt2/a"]],
    [`arn:aws:s3:::${BUCKET}/home/*`, [o("home/x"), o("home/")], [o("Home/x"), o("homex"), o("x/home/y")]],
    [`arn:aws:s3:::${BUCKET}/file-?.txt`, [o("file-1.txt")], [o("file-10.txt"), o("file-.txt")]],
    [`arn:aws:s3:::${BUCKET}/*.jpg`, [o("a.jpg"), o("d/e.jpg")], [o("a.jpeg"), o("a.JPG")]],
    [`arn:aws:s3:::${BUCKET}/exact key`, [o("exact key")], [o("exact key2"), o("exact")]],
    [`arn:aws:s3:::bk*`, [o("x"), bucketArn(BUCKET)], []],
    [[`arn:aws:s3:::${BUCKET}/a/*`, `arn:aws:s3:::${BUCKET}/b/*`], [o("a/1"), o("b/2")], [o("c/3")]],
  ];
  it.each(cases)("Resource %j", (resource, yes, no) => {
    const p = policy([allow({ Resource: resource, Action: "s3:*" })]);
    for (const r of yes) expect([r, evaluate(p, req({ resource: r }))]).toEqual([r, "Allow"]);
    for (const r of no) expect([r, evaluate(p, req({ resource: r }))]).toEqual([r, "NoMatch"]);
  });
  it.each(cases)("NotResource %j is the complement", (resource, yes, no) => {
    const p = policy([{ ...allow(), Action: "s3:*", Resource: undefined, NotResource: resource }]);
    for (const r of yes) expect([r, evaluate(p, req({ resource: r }))]).toEqual([r, "NoMatch"]);
    for (const r of no) expect([r, evaluate(p, req({ resource: r }))]).toEqual([r, "Allow"]);
  });
  it("keys with newlines and regex metacharacters match literally", () => {
    const p = policy([allow({ Resource: `arn:aws:s3:::${BUCKET}/a.(b)+[c]/*` })]);
    expect(evaluate(p, req({ resource: o("a.(b)+[c]/x\ny") }))).toBe("Allow");
    expect(evaluate(p, req({ resource: o("aX(b)+[c]/x") }))).toBe("NoMatch");
  });
  it("substitutes policy variables in 2012-10-17 policies, literally", () => {
    const p = policy([allow({ Resource: `arn:aws:s3:::${BUCKET}/home/\${aws:username}/*` })]);
    expect(evaluate(p, req({ principal: alice, resource: o("home/alice/x") }))).toBe("Allow");
    expect(evaluate(p, req({ principal: bob, resource: o("home/alice/x") }))).toBe("NoMatch");
    expect(evaluate(p, req({ principal: bob, resource: o("home/bob/x") }))).toBe("Allow");
    // No user name (anonymous): the variable cannot be resolved, so nothing matches.
    expect(evaluate(p, req({ principal: "anonymous", resource: o("home//x") }))).toBe("NoMatch");
    // A user named "*" must not become a wildcard.
    const star: TenantPrincipal = { ...bob, userName: "*" };
    expect(evaluate(p, req({ principal: star, resource: o("home/alice/x") }))).toBe("NoMatch");
    expect(evaluate(p, req({ principal: star, resource: o("home/*/x") }))).toBe("Allow");
  });
  it("supports ${*}, ${?}, ${$} and defaults", () => {
    const p = policy([allow({ Resource: `arn:aws:s3:::${BUCKET}/lit\${*}\${?}\${$}/\${aws:Referer, 'none'}/*` })]);
    expect(evaluate(p, req({ resource: o("lit*?$/none/x") }))).toBe("Allow");
    expect(evaluate(p, req({ resource: o("litab$/none/x") }))).toBe("NoMatch");
    expect(evaluate(p, req({ resource: o("lit*?$/p1/x"), context: { "aws:referer": "p1" } }))).toBe("Allow");
  });
  it("treats ${…} literally under Version 2008-10-17", () => {
    const p = policy([allow({ Resource: `arn:aws:s3:::${BUCKET}/home/\${aws:username}/*` })], "2008-10-17");
    expect(evaluate(p, req({ resource: o("home/alice/x") }))).toBe("NoMatch");
    expect(evaluate(p, req({ resource: o("home/${aws:username}/x") }))).toBe("Allow");
  });
});

describe("validation (PutBucketPolicy)", () => {
  const doc = (statement: Statement | Statement[], top: Record<string, unknown> = {}) =>
    JSON.stringify({ Version: "2012-10-17", ...top, Statement: statement });
  const base = allow();
  const cases: [string, string, RegExp][] = [
    ["bad JSON", '{"Version": "2012-10-17", "Statement": [', /must be valid JSON/],
    ["first byte not '{'", ` ${doc(base)}`, /first byte must be '\{'/],
    ["a JSON array", `[${doc(base)}]`, /first byte must be '\{'/],
    ["empty text", "", /first byte must be '\{'/],
    ["bad Version", doc(base, { Version: "2020-01-01" }), /Version.*2020-01-01/],
    ["unknown top-level field", doc(base, { Statements: [] }), /Unknown field Statements/],
    ["missing Statement", JSON.stringify({ Version: "2012-10-17" }), /Missing required field Statement/],
    ["empty Statement", doc([]), /Statement is empty/],
    ["statement not an object", doc(["x" as unknown as Statement]), /Statement must be an object/],
    ["missing Effect", doc({ ...base, Effect: undefined }), /Missing required field Effect/],
    ["bad Effect", doc({ ...base, Effect: "Allows" }), /Invalid effect: "Allows"/],
    ["lowercase Effect", doc({ ...base, Effect: "allow" }), /Invalid effect: "allow"/],
    ["unknown statement field", doc({ ...base, Resources: "x" }), /Unknown field Resources/],
    ["missing Principal", doc({ ...base, Principal: undefined }), /Missing required field Principal/],
    ["both Principal and NotPrincipal", doc({ ...base, NotPrincipal: "*" }), /both Principal and NotPrincipal/],
    ["bad principal string", doc({ ...base, Principal: "alice" }), /Invalid principal in policy/],
    ["bad AWS principal", doc({ ...base, Principal: { AWS: "alice" } }), /Invalid principal in policy: "alice"/],
    ["unknown principal type", doc({ ...base, Principal: { Users: "*" } }), /Invalid principal in policy/],
    ["bad principal ARN", doc({ ...base, Principal: { AWS: `arn:aws:iam::${OWNER}:group/x` } }), /Invalid principal in policy/],
    ["missing Action", doc({ ...base, Action: undefined }), /Missing required field Action/],
    ["both Action and NotAction", doc({ ...base, NotAction: "s3:PutObject" }), /both Action and NotAction/],
    ["unknown action", doc({ ...base, Action: "s3:FlyToTheMoon" }), /Policy has invalid action: s3:FlyToTheMoon/],
    ["action AWS does not define", doc({ ...base, Action: ["s3:GetObject", "s3:PutObjectAclz"] }), /invalid action: s3:PutObjectAclz/],
    ["non-S3 action", doc({ ...base, Action: "iam:PassRole" }), /invalid action: iam:PassRole/],
    ["empty action list", doc({ ...base, Action: [] }), /Action must be a non-empty/],
    ["missing Resource", doc({ ...base, Resource: undefined }), /Missing required field Resource/],
    ["both Resource and NotResource", doc({ ...base, NotResource: "arn:aws:s3:::bkt/*" }), /both Resource and NotResource/],
    ["resource in another bucket", doc({ ...base, Resource: "arn:aws:s3:::other/*" }), /Policy has invalid resource: arn:aws:s3:::other\/\*/],
    ["resource with the bucket as a prefix", doc({ ...base, Resource: "arn:aws:s3:::bkt2/*" }), /invalid resource: arn:aws:s3:::bkt2/],
    ["non-S3 resource", doc({ ...base, Resource: "arn:aws:sqs:::bkt" }), /invalid resource/],
    ["bare * resource", doc({ ...base, Resource: "*" }), /invalid resource: \*/],
    ["object action on bucket resource", doc({ ...base, Resource: "arn:aws:s3:::bkt" }), /Action does not apply to any resource\(s\) in statement: s3:GetObject/],
    ["bucket action on object resource", doc({ ...base, Action: "s3:ListBucket" }), /Action does not apply to any resource\(s\) in statement: s3:ListBucket/],
    ["ListAllMyBuckets in a bucket policy", doc({ ...base, Action: "s3:ListAllMyBuckets" }), /does not apply.*ListAllMyBuckets/],
    ["unknown operator", doc({ ...base, Condition: { StringEquls: { "aws:UserAgent": "x" } } }), /Invalid Condition type : StringEquls/],
    ["unknown operator with empty block", doc({ ...base, Condition: { Foo: {} } }), /Invalid Condition type : Foo/],
    ["NullIfExists", doc({ ...base, Condition: { NullIfExists: { "aws:UserAgent": "true" } } }), /Invalid Condition type : NullIfExists/],
    ["unknown qualifier", doc({ ...base, Condition: { "ForSomeValues:StringEquals": { "aws:UserAgent": "x" } } }), /Invalid Condition type/],
    ["unknown key", doc({ ...base, Condition: { StringEquals: { "aws:Foo": "x" } } }), /invalid condition key: aws:Foo/],
    ["unknown service key", doc({ ...base, Condition: { StringEquals: { "ec2:Region": "x" } } }), /invalid condition key: ec2:Region/],
    ["empty tag key", doc({ ...base, Condition: { StringEquals: { "s3:ExistingObjectTag/": "x" } } }), /invalid condition key/],
    ["bad IP", doc({ ...base, Condition: { IpAddress: { "aws:SourceIp": "300.1.1.1/8" } } }), /Invalid Condition value for IpAddress aws:SourceIp: "300.1.1.1\/8"/],
    ["bad prefix length", doc({ ...base, Condition: { IpAddress: { "aws:SourceIp": "10.0.0.0/33" } } }), /IpAddress/],
    ["bad number", doc({ ...base, Condition: { NumericLessThan: { "s3:max-keys": "ten" } } }), /NumericLessThan s3:max-keys: "ten"/],
    ["bad date", doc({ ...base, Condition: { DateLessThan: { "aws:CurrentTime": "tomorrow" } } }), /DateLessThan.*"tomorrow"/],
    ["bad bool", doc({ ...base, Condition: { Bool: { "aws:SecureTransport": "yes" } } }), /Bool.*"yes"/],
    ["bad base64", doc({ ...base, Condition: { BinaryEquals: { "s3:x-amz-content-sha256": "!!" } } }), /BinaryEquals/],
    ["object as a condition value", doc({ ...base, Condition: { StringEquals: { "aws:UserAgent": { a: 1 } } } }), /Invalid Condition value.*aws:UserAgent/],
    ["empty condition value list", doc({ ...base, Condition: { StringEquals: { "aws:UserAgent": [] } } }), /empty list/],
    ["condition block not an object", doc({ ...base, Condition: { StringEquals: "x" } }), /StringEquals must map/],
    ["bad policy variable", doc({ ...base, Resource: "arn:aws:s3:::bkt/${aws:nope}/*" }), /invalid policy variable: \$\{aws:nope\}/],
    ["duplicate Sid", doc([{ ...base, Sid: "a" }, { ...base, Sid: "a" }]), /unique: a/],
    ["Sid not a string", doc({ ...base, Sid: 1 }), /Sid must be a string/],
  ];
  it.each(cases)("refuses %s", (_name, text, message) => {
    const err = refusal(() => parsePolicy(text, BUCKET));
    expect(err.code).toBe("MalformedPolicy");
    expect(err.status).toBe(400);
    expect(err.message).toMatch(message);
  });

  it("refuses a policy over 20 KiB, and accepts one just under", () => {
    const pad = (n: number) => doc(allow({ Sid: "x".repeat(n) }));
    const baseLen = pad(0).length;
    expect(parsePolicy(pad(20 * 1024 - baseLen), BUCKET).statements).toHaveLength(1);
    const err = refusal(() => parsePolicy(pad(20 * 1024 - baseLen + 1), BUCKET));
    expect(err.code).toBe("MalformedPolicy");
    expect(err.message).toMatch(/exceeds the maximum allowed document size/);
  });
  it("counts the size in UTF-8 bytes, not characters", () => {
    const text = doc(allow({ Sid: "é".repeat(10_300) }));
    expect(text.length).toBeLessThan(20 * 1024);
    expect(refusal(() => parsePolicy(text, BUCKET)).message).toMatch(/maximum allowed document size/);
  });

  it.each<[string, unknown]>([
    ["absent Version (2008 language)", { Statement: allow() }],
    ["a single Statement object", { Version: "2012-10-17", Statement: allow() }],
    ["numbers and booleans as condition values", { Version: "2012-10-17", Statement: allow({ Condition: { NumericLessThan: { "s3:max-keys": 10 }, Bool: { "aws:SecureTransport": true } } }) }],
    ["wildcard resource that names this bucket", { Version: "2012-10-17", Statement: allow({ Action: "s3:*", Resource: "arn:aws:s3:::*" }) }],
    ["mixed bucket and object actions with both resources", { Version: "2012-10-17", Statement: allow({ Action: ["s3:ListBucket", "s3:GetObject"], Resource: ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"] }) }],
    ["tag-family keys", { Version: "2012-10-17", Statement: allow({ Condition: { StringEquals: { "s3:ExistingObjectTag/Project": "x", "aws:RequestTag/env": "y", "s3:RequestObjectTag/a b": "z" } } }) }],
    ["real AWS keys this endpoint never sets", { Version: "2012-10-17", Statement: allow({ Condition: { StringEquals: { "aws:SourceVpc": "vpc-1", "aws:PrincipalOrgID": "o-1" } } }) }],
    ["case-insensitive keys and operators", { Version: "2012-10-17", Statement: allow({ Condition: { stringequals: { "AWS:USERAGENT": "x" }, "forAnyValue:StringLikeIfExists": { "S3:RequestObjectTagKeys": "a*" } } }) }],
    ["Service principal", { Version: "2012-10-17", Statement: allow({ Principal: { Service: "logging.s3.amazonaws.com" } }) }],
    ["NotAction with a bucket-level resource", { Version: "2012-10-17", Statement: { ...allow({ Resource: "arn:aws:s3:::bkt" }), Action: undefined, NotAction: "s3:GetObject" } }],
  ])("accepts %s", (_name, d) => {
    expect(parsePolicy(JSON.stringify(d), BUCKET).statements.length).toBeGreaterThan(0);
  });
});

describe("context keys are case-insensitive", () => {
  it("lowercase context keys match mixed-case policy keys", () => {
    const p = policy([allow({ Action: "s3:PutObject", Condition: { StringEquals: { "S3:X-Amz-Server-Side-Encryption": "aws:kms" } } })]);
    const ctx: ConditionContext = { "s3:x-amz-server-side-encryption": "aws:kms" };
    expect(evaluate(p, req({ action: "s3:PutObject", context: ctx }))).toBe("Allow");
  });
});

describe("condition keys AWS defines only for some actions", () => {
  // Service Authorization Reference, "Actions defined by Amazon S3": s3:prefix exists for
  // ListBucket(Versions) only, s3:x-amz-server-side-encryption for PutObject only, …; on
  // any other action the key is absent whatever the request carries. Found by
  // test/unit/policy-differential.test.ts: a GetObject sent with ?prefix=home/alice/ used to
  // satisfy a statement granting ListBucket and GetObject under an s3:prefix condition.
  const p = policy([
    allow({
      Principal: "*",
      Action: ["s3:ListBucket", "s3:GetObject"],
      Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`],
      Condition: { StringLike: { "s3:prefix": "home/${aws:username}/*" } },
    }),
  ]);
  const ctx = (prefix: string) => buildConditionContext({ principal: mallory, query: { prefix } });
  const o = (k: string) => objectArn(BUCKET, k);

  it("a key outside its actions is absent, whatever the request carries", () => {
    expect(evaluate(p, req({ action: "s3:ListBucket", resource: bucketArn(BUCKET), principal: mallory, context: ctx("home/mallory/") }))).toBe("Allow");
    expect(evaluate(p, req({ action: "s3:GetObject", resource: o("secret"), principal: mallory, context: ctx("home/mallory/") }))).toBe("NoMatch");
    expect(authorize({ policy: p, request: req({ action: "s3:GetObject", resource: o("secret"), principal: mallory, context: ctx("home/mallory/") }), isOwner: false })).toBe(false);
  });

  it("so a negated operator on it holds, and Null sees it absent", () => {
    const deny = policy([{ Effect: "Deny", Principal: "*", Action: "s3:*", Resource: `arn:aws:s3:::${BUCKET}/*`, Condition: { StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" } } }]);
    const sse = buildConditionContext({ headers: { "x-amz-server-side-encryption": "aws:kms" } });
    expect(evaluate(deny, req({ action: "s3:PutObject", context: sse }))).toBe("NoMatch");
    expect(evaluate(deny, req({ action: "s3:GetObject", context: sse }))).toBe("Deny");
    const isNull = policy([allow({ Condition: { Null: { "s3:x-amz-server-side-encryption": "true" } } })]);
    expect(evaluate(isNull, req({ action: "s3:GetObject", context: sse }))).toBe("Allow");
  });
});

describe("actions AWS defines but this endpoint does not implement", () => {
  it("validate (policies written for AWS keep working) and never match a request", () => {
    const bucket = "known-actions";
    const policy = parsePolicy(
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Deny", Principal: "*", Action: ["s3:PutObjectAcl", "s3:GetObjectTagging"], Resource: `arn:aws:s3:::${bucket}/*` },
          { Effect: "Allow", Principal: "*", Action: "s3:GetBucketAcl", Resource: `arn:aws:s3:::${bucket}` },
        ],
      }),
      bucket,
    );
    expect(evaluate(policy, { action: "s3:GetObject", resource: `arn:aws:s3:::${bucket}/k`, principal: "anonymous", context: {} })).toBe("NoMatch");
    expect(evaluate(policy, { action: "s3:PutObject", resource: `arn:aws:s3:::${bucket}/k`, principal: "anonymous", context: {} })).toBe("NoMatch");
  });

  it("still refuses names AWS does not define, and object actions on the bucket ARN alone", () => {
    expect(() => parsePolicy(JSON.stringify({ Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObjectAclz", Resource: "arn:aws:s3:::b/*" }] }), "b")).toThrow(/invalid action/);
    expect(() => parsePolicy(JSON.stringify({ Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:PutObjectAcl", Resource: "arn:aws:s3:::b" }] }), "b")).toThrow(/does not apply/);
  });
});
