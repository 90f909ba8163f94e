import { describe, expect, it } from "vitest";
import { buildConditionContext, evaluate, objectArn, parsePolicy, type ConditionValue, type RequestFacts, type TenantPrincipal } from "../../src/policy";

const BUCKET = "bkt";
const T = "domainiddomainiddomainiddoma0001";
const alice: TenantPrincipal = { tenantId: T, userName: "alice", userId: "AIDAALICE", isTenantAdmin: true };
const ABSENT = Symbol("absent");

/**
 * An action AWS defines the key for (keys outside their actions are absent: keys.ts):
 * listing keys on ListBucket, upload keys on PutObject, anything else on GetObject.
 */
function actionFor(key: string, fallback = "s3:GetObject"): { action: string; resource: string } {
  const k = key.toLowerCase();
  if (["s3:prefix", "s3:delimiter", "s3:max-keys"].includes(k)) return { action: "s3:ListBucket", resource: `arn:aws:s3:::${BUCKET}` };
  if (k.startsWith("aws:requesttag/") || k === "aws:tagkeys") return { action: "s3:CreateBucket", resource: `arn:aws:s3:::${BUCKET}` };
  if (k.startsWith("s3:existingobjecttag/")) return { action: "s3:GetObject", resource: objectArn(BUCKET, "k") };
  if (k.startsWith("s3:x-amz-") || k.startsWith("s3:requestobjecttag")) return { action: "s3:PutObject", resource: objectArn(BUCKET, "k") };
  return { action: fallback, resource: objectArn(BUCKET, "k") };
}

/** Does `{operator: {key: values}}` hold when the request carries `value` for `key`? */
function holds(operator: string, key: string, values: unknown, value: ConditionValue | typeof ABSENT): boolean {
  const p = parsePolicy(
    JSON.stringify({
      Version: "2012-10-17",
      Statement: { Effect: "Allow", Principal: "*", Action: "s3:*", Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`], Condition: { [operator]: { [key]: values } } },
    }),
    BUCKET,
  );
  const context = value === ABSENT ? {} : { [key.toLowerCase()]: value };
  // Anonymous so principal-derived keys never leak into operator tests.
  return evaluate(p, { ...actionFor(key), principal: "anonymous", context }) === "Allow";
}

type Row = [operator: string, key: string, values: unknown, value: ConditionValue | typeof ABSENT, expected: boolean];

const KMS = "s3:x-amz-server-side-encryption";
const IP = "aws:SourceIp";
const NOW = "aws:CurrentTime";
const TAGS = "s3:RequestObjectTagKeys";
const PARN = "aws:PrincipalArn";
const userArn = `arn:aws:iam::${T}:user/alice`;

const rows: Row[] = [
  // String
  ["StringEquals", KMS, "aws:kms", "aws:kms", true],
  ["StringEquals", KMS, "aws:kms", "AES256", false],
  ["StringEquals", KMS, "aws:kms", "AWS:KMS", false],
  ["StringEquals", KMS, "aws:kms", ABSENT, false],
  ["StringEquals", KMS, ["AES256", "aws:kms"], "aws:kms", true],
  ["StringEquals", KMS, "aws:*", "aws:kms", false], // no wildcards in StringEquals
  ["StringEquals", KMS, "aws:*", "aws:*", true],
  ["StringNotEquals", KMS, "aws:kms", "AES256", true],
  ["StringNotEquals", KMS, "aws:kms", "aws:kms", false],
  ["StringNotEquals", KMS, "aws:kms", ABSENT, true], // negated + missing key → true
  ["StringNotEquals", KMS, ["aws:kms", "AES256"], "AES256", false], // not equal to ANY of the values
  ["StringNotEquals", KMS, ["aws:kms", "AES256"], "other", true],
  ["StringEqualsIgnoreCase", KMS, "aws:kms", "AWS:KMS", true],
  ["StringEqualsIgnoreCase", KMS, "AWS:kms", "aws:KMS", true],
  ["StringEqualsIgnoreCase", KMS, "aws:kms", "AES256", false],
  ["StringEqualsIgnoreCase", KMS, "aws:kms", ABSENT, false],
  ["StringNotEqualsIgnoreCase", KMS, "aws:kms", "AWS:KMS", false],
  ["StringNotEqualsIgnoreCase", KMS, "aws:kms", "AES256", true],
  ["StringNotEqualsIgnoreCase", KMS, "aws:kms", ABSENT, true],
  ["StringLike", "s3:prefix", "home/*", "home/alice/x", true],
  ["StringLike", "s3:prefix", "home/*", "home/", true],
  ["StringLike", "s3:prefix", "home/*", "Home/alice", false],
  ["StringLike", "s3:prefix", "home/?", "home/a", true],
  ["StringLike", "s3:prefix", "home/?", "home/ab", false],
  ["StringLike", "s3:prefix", "*a*b*c*", "xxaxxbxxcxx", true],
  ["StringLike", "s3:prefix", "*a*b*c*", "xxaxxcxxbxx", false],
  ["StringLike", "s3:prefix", ["x*", "home/*"], "home/1", true],
  ["StringLike", "s3:prefix", "home/*", ABSENT, false],
  ["StringNotLike", "s3:prefix", "home/*", "home/alice", false],
  ["StringNotLike", "s3:prefix", "home/*", "tmp/alice", true],
  ["StringNotLike", "s3:prefix", ["tmp/*", "home/*"], "tmp/x", false],
  ["StringNotLike", "s3:prefix", "home/*", ABSENT, true],
  // Numeric
  ["NumericEquals", "s3:max-keys", "10", "10", true],
  ["NumericEquals", "s3:max-keys", 10, "10.0", true],
  ["NumericEquals", "s3:max-keys", "10", "11", false],
  ["NumericEquals", "s3:max-keys", "10", "ten", false],
  ["NumericEquals", "s3:max-keys", "10", ABSENT, false],
  ["NumericNotEquals", "s3:max-keys", "10", "11", true],
  ["NumericNotEquals", "s3:max-keys", "10", "10", false],
  ["NumericNotEquals", "s3:max-keys", ["10", "11"], "11", false],
  ["NumericNotEquals", "s3:max-keys", "10", ABSENT, true],
  ["NumericLessThan", "s3:max-keys", "100", "99", true],
  ["NumericLessThan", "s3:max-keys", "100", "100", false],
  ["NumericLessThan", "s3:max-keys", "100", "-5", true],
  ["NumericLessThan", "s3:max-keys", "100", ABSENT, false],
  ["NumericLessThanEquals", "s3:max-keys", "100", "100", true],
  ["NumericLessThanEquals", "s3:max-keys", "100", "101", false],
  ["NumericLessThanEquals", "s3:max-keys", "100", ABSENT, false],
  ["NumericGreaterThan", "s3:max-keys", "100", "101", true],
  ["NumericGreaterThan", "s3:max-keys", "100", "100", false],
  ["NumericGreaterThan", "s3:max-keys", "1.5", "1.75", true],
  ["NumericGreaterThan", "s3:max-keys", "100", ABSENT, false],
  ["NumericGreaterThanEquals", "s3:max-keys", "100", "100", true],
  ["NumericGreaterThanEquals", "s3:max-keys", "100", "99", false],
  ["NumericGreaterThanEquals", "s3:max-keys", "100", ABSENT, false],
  // Date (ISO 8601 and epoch seconds, on either side)
  ["DateEquals", NOW, "2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z", true],
  ["DateEquals", NOW, "1714521600", "2024-05-01T00:00:00Z", true],
  ["DateEquals", NOW, "2024-05-01T02:00:00+02:00", "2024-05-01T00:00:00Z", true],
  ["DateEquals", NOW, "2024-05-01", "2024-05-01T00:00:00Z", true],
  ["DateEquals", NOW, "2024-05-01T00:00:00Z", "2024-05-01T00:00:01Z", false],
  ["DateEquals", NOW, "2024-05-01T00:00:00Z", "not a date", false],
  ["DateEquals", NOW, "2024-05-01T00:00:00Z", ABSENT, false],
  ["DateNotEquals", NOW, "2024-05-01T00:00:00Z", "2024-05-01T00:00:01Z", true],
  ["DateNotEquals", NOW, "2024-05-01T00:00:00Z", "2024-05-01T00:00:00.000Z", false],
  ["DateNotEquals", NOW, "2024-05-01T00:00:00Z", ABSENT, true],
  ["DateLessThan", NOW, "2030-01-01T00:00:00Z", "2024-05-01T00:00:00Z", true],
  ["DateLessThan", NOW, "2030-01-01T00:00:00Z", "2031-01-01T00:00:00Z", false],
  ["DateLessThan", NOW, "2030-01-01T00:00:00Z", ABSENT, false],
  ["DateLessThanEquals", NOW, "2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z", true],
  ["DateLessThanEquals", NOW, "2030-01-01T00:00:00Z", "2030-01-01T00:00:01Z", false],
  ["DateGreaterThan", NOW, "2020-01-01T00:00:00Z", "2024-05-01T00:00:00Z", true],
  ["DateGreaterThan", NOW, "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", false],
  ["DateGreaterThan", NOW, "2020-01-01T00:00:00Z", ABSENT, false],
  ["DateGreaterThanEquals", NOW, "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", true],
  ["DateGreaterThanEquals", NOW, "2020-01-01T00:00:00Z", "2019-12-31T23:59:59Z", false],
  ["DateGreaterThan", "aws:EpochTime", "2020-01-01T00:00:00Z", "1714521600", true],
  ["DateLessThan", "aws:EpochTime", "1577836800", "1577836799", true],
  // Bool
  ["Bool", "aws:SecureTransport", "true", "true", true],
  ["Bool", "aws:SecureTransport", true, "TRUE", true],
  ["Bool", "aws:SecureTransport", "true", "false", false],
  ["Bool", "aws:SecureTransport", "false", "false", true],
  ["Bool", "aws:SecureTransport", "true", ABSENT, false],
  ["Bool", "aws:SecureTransport", "false", ABSENT, false],
  // Binary
  ["BinaryEquals", "s3:x-amz-content-sha256", "QmluYXJ5VmFsdWU=", "QmluYXJ5VmFsdWU=", true],
  ["BinaryEquals", "s3:x-amz-content-sha256", "QmluYXJ5VmFsdWU=", "QmluYXJ5VmFsdWF=", false],
  ["BinaryEquals", "s3:x-amz-content-sha256", "QmluYXJ5VmFsdWU=", ABSENT, false],
  // IP addresses
  ["IpAddress", IP, "203.0.113.0/24", "203.0.113.7", true],
  ["IpAddress", IP, "203.0.113.0/24", "203.0.114.7", false],
  ["IpAddress", IP, "203.0.113.0/25", "203.0.113.128", false],
  ["IpAddress", IP, "203.0.113.7", "203.0.113.7", true],
  ["IpAddress", IP, "203.0.113.7/32", "203.0.113.8", false],
  ["IpAddress", IP, "0.0.0.0/0", "8.8.8.8", true],
  ["IpAddress", IP, "203.0.113.0/24", "::ffff:203.0.113.9", true],
  ["IpAddress", IP, ["10.0.0.0/8", "2001:db8::/32"], "2001:db8:1::5", true],
  ["IpAddress", IP, "2001:db8::/32", "2001:db9::1", false],
  ["IpAddress", IP, "2001:db8::/33", "2001:db8:8000::1", false],
  ["IpAddress", IP, "2001:db8::/32", "203.0.113.7", false],
  ["IpAddress", IP, "203.0.113.0/24", "not-an-ip", false],
  ["IpAddress", IP, "203.0.113.0/24", ABSENT, false],
  ["NotIpAddress", IP, "203.0.113.0/24", "198.51.100.1", true],
  ["NotIpAddress", IP, "203.0.113.0/24", "203.0.113.7", false],
  ["NotIpAddress", IP, ["10.0.0.0/8", "203.0.113.0/24"], "10.1.2.3", false],
  ["NotIpAddress", IP, "203.0.113.0/24", ABSENT, true],
  // ARNs: compared component by component
  ["ArnEquals", PARN, userArn, userArn, true],
  ["ArnEquals", PARN, userArn, `arn:aws:iam::${T}:user/bob`, false],
  ["ArnEquals", PARN, `arn:aws:iam::${T}:user/*`, userArn, true],
  ["ArnEquals", PARN, userArn, ABSENT, false],
  ["ArnLike", PARN, "arn:aws:iam::*:user/a*", userArn, true],
  ["ArnLike", PARN, "arn:aws:iam::*:user/b*", userArn, false],
  ["ArnLike", PARN, "arn:aws:iam::*:user/alice", "arn:aws:iam::a:b:user/alice", false], // * stays inside its component
  ["ArnLike", PARN, "arn:aws:s3:::bkt/*", "arn:aws:s3:::bkt/a:b/c", true], // resource keeps its colons
  ["ArnLike", PARN, "arn:aws:iam::*:user/a*", "not-an-arn", false],
  ["ArnLike", PARN, "*", "anything", true],
  ["ArnLike", PARN, "arn:aws:iam::*:user/a*", ABSENT, false],
  ["ArnNotEquals", PARN, userArn, `arn:aws:iam::${T}:user/bob`, true],
  ["ArnNotEquals", PARN, userArn, userArn, false],
  ["ArnNotEquals", PARN, userArn, ABSENT, true],
  ["ArnNotLike", PARN, "arn:aws:iam::*:user/a*", userArn, false],
  ["ArnNotLike", PARN, "arn:aws:iam::*:user/b*", userArn, true],
  ["ArnNotLike", PARN, "arn:aws:iam::*:user/a*", ABSENT, true],
  // Null tests presence only
  ["Null", KMS, "true", ABSENT, true],
  ["Null", KMS, "true", "aws:kms", false],
  ["Null", KMS, "false", "aws:kms", true],
  ["Null", KMS, "false", "", true],
  ["Null", KMS, "false", ABSENT, false],
  ["Null", KMS, true, [], true],
  // …IfExists: absent → true; present → the operator
  ["StringEqualsIfExists", KMS, "aws:kms", ABSENT, true],
  ["StringEqualsIfExists", KMS, "aws:kms", "aws:kms", true],
  ["StringEqualsIfExists", KMS, "aws:kms", "AES256", false],
  ["StringNotEqualsIfExists", KMS, "aws:kms", ABSENT, true],
  ["StringNotEqualsIfExists", KMS, "aws:kms", "aws:kms", false],
  ["StringLikeIfExists", "s3:prefix", "home/*", ABSENT, true],
  ["StringLikeIfExists", "s3:prefix", "home/*", "tmp/", false],
  ["NumericLessThanIfExists", "s3:max-keys", "100", ABSENT, true],
  ["NumericLessThanIfExists", "s3:max-keys", "100", "1000", false],
  ["DateLessThanIfExists", NOW, "2030-01-01T00:00:00Z", ABSENT, true],
  ["DateLessThanIfExists", NOW, "2030-01-01T00:00:00Z", "2031-01-01T00:00:00Z", false],
  ["BoolIfExists", "aws:SecureTransport", "true", ABSENT, true],
  ["BoolIfExists", "aws:SecureTransport", "true", "false", false],
  ["BinaryEqualsIfExists", "s3:x-amz-content-sha256", "QQ==", ABSENT, true],
  ["IpAddressIfExists", IP, "10.0.0.0/8", ABSENT, true],
  ["IpAddressIfExists", IP, "10.0.0.0/8", "11.0.0.1", false],
  ["NotIpAddressIfExists", IP, "10.0.0.0/8", "10.0.0.1", false],
  ["ArnLikeIfExists", PARN, "arn:aws:iam::*:user/a*", ABSENT, true],
  ["ArnLikeIfExists", PARN, "arn:aws:iam::*:user/b*", userArn, false],
  // Multi-valued keys without a qualifier: positive = any value matches; negated = none does
  ["StringEquals", TAGS, "a", ["b", "a"], true],
  ["StringEquals", TAGS, "a", ["b", "c"], false],
  ["StringNotEquals", TAGS, "a", ["b", "a"], false],
  ["StringNotEquals", TAGS, "a", ["b", "c"], true],
  // ForAnyValue: at least one request value; false when absent
  ["ForAnyValue:StringEquals", TAGS, ["a", "b"], ["b", "c"], true],
  ["ForAnyValue:StringEquals", TAGS, ["a", "b"], ["c"], false],
  ["ForAnyValue:StringEquals", TAGS, ["a", "b"], ABSENT, false],
  ["ForAnyValue:StringEquals", TAGS, ["a", "b"], [], false],
  ["ForAnyValue:StringLike", TAGS, "a*", ["zz", "ab"], true],
  ["ForAnyValue:StringNotEquals", TAGS, "a", ["a", "b"], true],
  ["ForAnyValue:StringNotEquals", TAGS, "a", ["a"], false],
  ["ForAnyValue:StringNotEquals", TAGS, "a", ABSENT, false],
  // IfExists does not rescue ForAnyValue: with no request value there is no value to match
  // (IAM User Guide, set operators: "for no matching key or a null dataset, the condition
  // returns false"; AWS answers so, and iam-simulate agrees — test/unit/policy-differential).
  ["ForAnyValue:StringEqualsIfExists", TAGS, "a", ABSENT, false],
  ["ForAnyValue:StringNotEqualsIfExists", TAGS, "a", ABSENT, false],
  ["ForAnyValue:StringEqualsIfExists", TAGS, "a", ["a"], true],
  ["ForAllValues:StringEqualsIfExists", TAGS, "a", ABSENT, true],
  // ForAllValues: every request value; true when absent (the empty set)
  ["ForAllValues:StringEquals", TAGS, ["a", "b"], ["a", "b"], true],
  ["ForAllValues:StringEquals", TAGS, ["a", "b"], ["a"], true],
  ["ForAllValues:StringEquals", TAGS, ["a", "b"], ["a", "c"], false],
  ["ForAllValues:StringEquals", TAGS, ["a", "b"], ABSENT, true],
  ["ForAllValues:StringEquals", TAGS, ["a", "b"], "a", true],
  ["ForAllValues:StringLike", TAGS, ["a*", "b*"], ["ax", "by"], true],
  ["ForAllValues:StringLike", TAGS, ["a*", "b*"], ["ax", "cy"], false],
  ["ForAllValues:StringNotEquals", TAGS, "x", ["a", "b"], true],
  ["ForAllValues:StringNotEquals", TAGS, "x", ["a", "x"], false],
  ["ForAllValues:StringNotEquals", TAGS, "x", ABSENT, true],
  ["ForAllValues:StringEqualsIgnoreCase", TAGS, ["a", "b"], ["A", "B"], true],
];

/**
 * Every operator (but Null) gets IfExists rows derived from its own: with the key
 * present IfExists changes nothing; with it absent the condition holds.
 */
const BASE_OPS = [...new Set(rows.map((r) => r[0]).filter((op) => !op.includes(":") && !op.endsWith("IfExists") && op !== "Null"))];
const ifExistsRows: Row[] = BASE_OPS.flatMap((op) => {
  const mine = rows.filter((r) => r[0] === op);
  const first = mine[0] as Row;
  return [
    ...mine.filter((r) => r[3] !== ABSENT).map((r): Row => [`${op}IfExists`, r[1], r[2], r[3], r[4]]),
    [`${op}IfExists`, first[1], first[2], ABSENT, true] as Row,
  ];
});

describe("condition operators", () => {
  it.each(ifExistsRows)("%s {%s: %j} with %j → %s", (op, key, values, value, expected) => {
    expect(holds(op, key, values, value)).toBe(expected);
  });

  it.each(rows)("%s {%s: %j} with %j → %s", (op, key, values, value, expected) => {
    expect(holds(op, key, values, value)).toBe(expected);
  });

  it("covers every operator the brief lists, each with a match, a miss and a missing key", () => {
    const ops = [
      "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
      "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals",
      "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
      "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
    ];
    for (const op of ops) {
      const mine = rows.filter((r) => r[0] === op);
      expect([op, mine.some((r) => r[4])]).toEqual([op, true]);
      expect([op, mine.some((r) => !r[4])]).toEqual([op, true]);
      if (op !== "DateLessThanEquals" && op !== "DateGreaterThanEquals") {
        expect([op, mine.some((r) => r[3] === ABSENT)]).toEqual([op, true]);
      }
      if (op !== "Null") expect([op, ifExistsRows.some((r) => r[0] === `${op}IfExists` && r[3] === ABSENT)]).toEqual([op, true]);
    }
  });

  it("ANDs keys within an operator and operators within a Condition, ORs values", () => {
    const p = parsePolicy(
      JSON.stringify({
        Version: "2012-10-17",
        Statement: {
          Effect: "Allow",
          Principal: "*",
          Action: "s3:PutObject",
          Resource: `arn:aws:s3:::${BUCKET}/*`,
          Condition: {
            StringEquals: { "s3:x-amz-server-side-encryption": ["aws:kms", "AES256"], "s3:x-amz-acl": "private" },
            Bool: { "aws:SecureTransport": "true" },
          },
        },
      }),
      BUCKET,
    );
    const run = (context: Record<string, string>) =>
      evaluate(p, { action: "s3:PutObject", resource: objectArn(BUCKET, "k"), principal: "anonymous", context });
    const full = { "s3:x-amz-server-side-encryption": "AES256", "s3:x-amz-acl": "private", "aws:securetransport": "true" };
    expect(run(full)).toBe("Allow");
    expect(run({ ...full, "s3:x-amz-server-side-encryption": "aws:kms" })).toBe("Allow");
    expect(run({ ...full, "s3:x-amz-acl": "public-read" })).toBe("NoMatch");
    expect(run({ ...full, "aws:securetransport": "false" })).toBe("NoMatch");
    const { ["s3:x-amz-acl"]: _acl, ...noAcl } = full;
    expect(run(noAcl)).toBe("NoMatch");
  });

  it("substitutes policy variables in string and ARN condition values", () => {
    const p = parsePolicy(
      JSON.stringify({
        Version: "2012-10-17",
        Statement: {
          Effect: "Allow",
          Principal: "*",
          Action: "s3:ListBucket",
          Resource: `arn:aws:s3:::${BUCKET}`,
          Condition: { StringLike: { "s3:prefix": "home/${aws:username}/*" }, ArnEquals: { "aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}" } },
        },
      }),
      BUCKET,
    );
    const run = (principal: TenantPrincipal | "anonymous", prefix: string) =>
      evaluate(p, { action: "s3:ListBucket", resource: `arn:aws:s3:::${BUCKET}`, principal, context: { "s3:prefix": prefix } });
    expect(run(alice, "home/alice/docs")).toBe("Allow");
    expect(run(alice, "home/bob/docs")).toBe("NoMatch");
    expect(run({ ...alice, userName: "bob" }, "home/bob/docs")).toBe("Allow");
    expect(run("anonymous", "home//docs")).toBe("NoMatch");
  });
});

describe("condition keys: built from request facts and evaluated", () => {
  const now = new Date("2024-05-01T12:00:00.123Z");
  // [policy key (as AWS docs spell it), operator, value, facts that match, facts that don't]
  const keys: [string, string, unknown, RequestFacts, RequestFacts][] = [
    ["s3:x-amz-server-side-encryption", "StringEquals", "aws:kms", { headers: { "x-amz-server-side-encryption": "aws:kms" } }, { headers: { "x-amz-server-side-encryption": "AES256" } }],
    ["s3:x-amz-server-side-encryption-aws-kms-key-id", "StringLike", `arn:aws:kms:*:${T}:key/*`, { headers: new Headers({ "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": `arn:aws:kms:sichuan:${T}:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0` }) }, { headers: { "x-amz-server-side-encryption-aws-kms-key-id": "4f1cd4de-ab64-4807-920a-47fc42e7f0d0" } }],
    ["aws:SecureTransport", "Bool", "true", { secureTransport: true }, { secureTransport: false }],
    ["aws:SourceIp", "IpAddress", "192.0.2.0/24", { sourceIp: "192.0.2.44" }, { sourceIp: "198.51.100.1" }],
    ["aws:CurrentTime", "DateGreaterThan", "2024-05-01T11:59:59Z", { now }, { now: new Date("2024-05-01T11:00:00Z") }],
    ["aws:EpochTime", "NumericGreaterThanEquals", "1714564800", { now }, { now: new Date("2024-05-01T11:59:59Z") }],
    ["aws:Referer", "StringLike", "https://example.com/*", { headers: { Referer: "https://example.com/page" } }, { referer: "https://evil.example/" }],
    ["aws:UserAgent", "StringLike", "*aws-cli/*", { headers: { "user-agent": "aws-cli/2.15 Python" } }, { userAgent: "curl/8" }],
    ["aws:PrincipalAccount", "StringEquals", T, { principal: alice }, { principal: { ...alice, tenantId: "x".repeat(32) } }],
    ["aws:PrincipalArn", "ArnEquals", `arn:aws:iam::${T}:user/alice`, { principal: alice }, { principal: { ...alice, userName: "bob" } }],
    ["aws:PrincipalType", "StringEquals", "User", { principal: alice }, { principal: "anonymous" }],
    ["aws:username", "StringEquals", "alice", { principal: alice }, { principal: { ...alice, userName: "bob" } }],
    ["aws:userid", "StringEquals", "AIDAALICE", { principal: alice }, { principal: { ...alice, userId: "AIDABOB" } }],
    ["s3:prefix", "StringLike", "home/*", { query: new URLSearchParams("list-type=2&prefix=home/a") }, { query: { prefix: "tmp/" } }],
    ["s3:delimiter", "StringEquals", "/", { query: { delimiter: "/" } }, { query: { delimiter: "|" } }],
    ["s3:max-keys", "NumericLessThanEquals", "100", { query: { "max-keys": "50" } }, { query: { "max-keys": "1000" } }],
    ["s3:signatureversion", "StringEquals", "AWS4-HMAC-SHA256", { signatureVersion: "AWS4-HMAC-SHA256" }, { signatureVersion: "AWS" }],
    ["s3:authType", "StringEquals", "REST-HEADER", { authType: "REST-HEADER" }, { authType: "REST-QUERY-STRING" }],
    ["s3:x-amz-content-sha256", "StringEquals", "UNSIGNED-PAYLOAD", { headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } }, { headers: { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" } }],
    ["s3:x-amz-metadata-directive", "StringEquals", "REPLACE", { headers: { "x-amz-metadata-directive": "REPLACE" } }, { headers: { "x-amz-metadata-directive": "COPY" } }],
    ["s3:x-amz-acl", "StringEquals", "private", { headers: { "x-amz-acl": "private" } }, { headers: { "x-amz-acl": "public-read" } }],
    ["s3:x-amz-copy-source", "StringLike", "/bkt/*", { headers: { "x-amz-copy-source": "/bkt/a.txt" } }, { headers: { "x-amz-copy-source": "/other/a.txt" } }],
    ["s3:TlsVersion", "NumericGreaterThanEquals", "1.2", { tlsVersion: "TLSv1.3" }, { tlsVersion: "1.1" }],
    ["s3:signatureAge", "NumericLessThan", "600000", { signatureAgeMs: 1234 }, { signatureAgeMs: 900_000 }],
    ["s3:ExistingObjectTag/Classification", "StringEquals", "public", { existingObjectTags: { Classification: "public" } }, { existingObjectTags: { Classification: "secret" } }],
    ["s3:RequestObjectTag/Project", "StringEquals", "x", { requestObjectTags: { Project: "x" } }, { requestObjectTags: { Project: "y" } }],
    ["s3:RequestObjectTagKeys", "ForAllValues:StringEquals", ["Project", "Owner"], { requestObjectTags: { Project: "x", Owner: "y" } }, { requestObjectTags: { Project: "x", Secret: "y" } }],
    ["aws:RequestTag/env", "StringEquals", "prod", { requestTags: { env: "prod" } }, { requestTags: { env: "dev" } }],
    ["aws:TagKeys", "ForAnyValue:StringEquals", "env", { requestTags: { env: "prod" } }, { requestTags: { team: "a" } }],
  ];

  const decide = (key: string, op: string, value: unknown, facts: RequestFacts) => {
    const p = parsePolicy(
      JSON.stringify({
        Version: "2012-10-17",
        Statement: { Effect: "Allow", Principal: "*", Action: "s3:*", Resource: [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`], Condition: { [op]: { [key]: value } } },
      }),
      BUCKET,
    );
    const principal = facts.principal ?? "anonymous";
    return evaluate(p, { ...actionFor(key, "s3:PutObject"), principal, context: buildConditionContext(facts) });
  };

  it.each(keys)("%s (%s)", (key, op, value, yes, no) => {
    expect(decide(key, op, value, yes)).toBe("Allow");
    expect(decide(key, op, value, no)).toBe("NoMatch");
    // Missing entirely: a positive operator does not hold (ForAllValues does: empty set).
    if (op !== "ForAllValues:StringEquals") expect(decide(key, op, value, { now: new Date(0) })).toBe("NoMatch");
  });

  it("builds the context with lowercase keys and AWS's value formats", () => {
    const ctx = buildConditionContext({
      headers: { "X-Amz-ACL": "private", "Content-Type": "text/plain", "User-Agent": "ua" },
      sourceIp: "192.0.2.1",
      secureTransport: false,
      now,
      principal: "anonymous",
      query: { prefix: "", "max-keys": undefined },
      authType: "POST",
      signatureVersion: "AWS4-HMAC-SHA256",
      tlsVersion: "TLSv1.2",
      extra: { "S3:X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "arn:aws:kms:r:t:key/1", "aws:UserAgent": undefined },
    });
    expect(ctx).toEqual({
      "s3:x-amz-acl": "private",
      "aws:sourceip": "192.0.2.1",
      "aws:securetransport": "false",
      "aws:currenttime": "2024-05-01T12:00:00Z",
      "aws:epochtime": "1714564800",
      "aws:principaltype": "Anonymous",
      "s3:prefix": "",
      "s3:authtype": "POST",
      "s3:signatureversion": "AWS4-HMAC-SHA256",
      "s3:tlsversion": "1.2",
      "s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:r:t:key/1",
    });
  });

  it("principal keys come from the request's principal even if the context omits them", () => {
    const p = parsePolicy(
      JSON.stringify({
        Version: "2012-10-17",
        Statement: { Effect: "Deny", Principal: "*", Action: "s3:*", Resource: `arn:aws:s3:::${BUCKET}/*`, Condition: { StringNotEquals: { "aws:PrincipalAccount": T } } },
      }),
      BUCKET,
    );
    const run = (principal: TenantPrincipal | "anonymous") =>
      evaluate(p, { action: "s3:GetObject", resource: objectArn(BUCKET, "k"), principal, context: {} });
    expect(run(alice)).toBe("NoMatch");
    expect(run({ ...alice, tenantId: "y".repeat(32) })).toBe("Deny");
    expect(run("anonymous")).toBe("Deny");
  });
});
