import { describe, expect, it } from "vitest";
import { S3Error } from "../../src/errors";
import { getCompiledPolicy, invalidatePolicy, isPublic, MAX_CACHED_POLICIES, parsePolicy } from "../../src/policy";
import { policyCacheSize } from "../../src/policy/cache";
import { Glob } from "../../src/policy/glob";
import { cidrContains, parseCidr, parseIp } from "../../src/policy/ip";

const BUCKET = "bkt";
const T = "domainiddomainiddomainiddoma0001";
const doc = (statements: Record<string, unknown>[]) => JSON.stringify({ Version: "2012-10-17", Statement: statements });
const stmt = (extra: Record<string, unknown> = {}) => ({ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/*`, ...extra });

describe("isPublic (GetBucketPolicyStatus)", () => {
  const cases: [string, Record<string, unknown>[], boolean][] = [
    ["Allow to *", [stmt()], true],
    ['Allow to {"AWS":"*"}', [stmt({ Principal: { AWS: "*" } })], true],
    ["Allow to a wildcard principal ARN", [stmt({ Principal: { AWS: "arn:aws:iam::*:root" } })], true],
    ["Allow to one tenant", [stmt({ Principal: { AWS: T } })], false],
    ["Allow to one user", [stmt({ Principal: { AWS: `arn:aws:iam::${T}:user/alice` } })], false],
    ["Deny to *", [stmt({ Effect: "Deny" })], false],
    ["no policy", [], false],
    ["* restricted to a private /8", [stmt({ Condition: { IpAddress: { "aws:SourceIp": "10.0.0.0/8" } } })], false],
    ["* restricted to an IPv6 /48", [stmt({ Condition: { IpAddress: { "aws:SourceIp": "2001:db8:1::/48" } } })], false],
    ["* restricted to 0.0.0.0/1", [stmt({ Condition: { IpAddress: { "aws:SourceIp": "0.0.0.0/1" } } })], true],
    ["* with one too-broad range among narrow ones", [stmt({ Condition: { IpAddress: { "aws:SourceIp": ["10.0.0.0/8", "0.0.0.0/0"] } } })], true],
    ["* with NotIpAddress", [stmt({ Condition: { NotIpAddress: { "aws:SourceIp": "10.0.0.0/8" } } })], true],
    ["* restricted to a VPC", [stmt({ Condition: { StringEquals: { "aws:SourceVpc": "vpc-111" } } })], false],
    ["* restricted to a VPC wildcard", [stmt({ Condition: { StringLike: { "aws:SourceVpc": "vpc-*" } } })], true],
    ["* restricted to an account", [stmt({ Condition: { StringEquals: { "aws:PrincipalAccount": T } } })], false],
    ["* restricted by IfExists (absent key passes)", [stmt({ Condition: { StringEqualsIfExists: { "aws:PrincipalAccount": T } } })], true],
    ["* restricted by ForAllValues (absent key passes)", [stmt({ Condition: { "ForAllValues:StringEquals": { "aws:SourceVpc": "vpc-111" } } })], true],
    ["* restricted by ForAnyValue", [stmt({ Condition: { "ForAnyValue:StringEquals": { "aws:SourceVpc": "vpc-111" } } })], false],
    ["* restricted by a negated operator", [stmt({ Condition: { StringNotEquals: { "aws:PrincipalAccount": T } } })], true],
    ["* restricted by a policy variable", [stmt({ Condition: { StringEquals: { "aws:userid": "${aws:username}" } } })], true],
    ["* restricted by a principal ARN", [stmt({ Condition: { ArnEquals: { "aws:PrincipalArn": `arn:aws:iam::${T}:user/alice` } } })], false],
    ["* with an unrelated condition only", [stmt({ Condition: { StringLike: { "s3:prefix": "public/*" } } })], true],
    ["* with SecureTransport only", [stmt({ Condition: { Bool: { "aws:SecureTransport": "true" } } })], true],
    ["one public statement among private ones", [stmt({ Principal: { AWS: T } }), stmt({ Sid: "pub", Action: "s3:PutObject" })], true],
  ];
  it.each(cases)("%s → %s", (_n, statements, expected) => {
    expect(isPublic(statements.length ? parsePolicy(doc(statements), BUCKET) : null)).toBe(expected);
  });
});

describe("NotPrincipal", () => {
  it("with Effect Allow is MalformedPolicy, as AWS (IAM: NotPrincipal only with Deny); with Deny it parses", () => {
    const notPrincipal = (Effect: string) => doc([{ ...stmt({ Effect }), Principal: undefined, NotPrincipal: { AWS: T } }]);
    let error: unknown;
    try {
      parsePolicy(notPrincipal("Allow"), BUCKET);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(S3Error);
    expect((error as S3Error).code).toBe("MalformedPolicy");
    expect((error as S3Error).status).toBe(400);
    expect(isPublic(parsePolicy(notPrincipal("Deny"), BUCKET))).toBe(false);
  });
});

describe("getCompiledPolicy (isolate cache)", () => {
  it("parses once per text and reparses when the text or version changes", () => {
    const a = doc([stmt({ Resource: "arn:aws:s3:::cache-1/*" })]);
    const b = doc([stmt({ Effect: "Deny", Resource: "arn:aws:s3:::cache-1/*" })]);
    const p1 = getCompiledPolicy("cache-1", a, 1);
    expect(getCompiledPolicy("cache-1", a, 1)).toBe(p1);
    const p2 = getCompiledPolicy("cache-1", b, 1);
    expect(p2).not.toBe(p1);
    expect(p2?.statements[0]?.effect).toBe("Deny");
    const p3 = getCompiledPolicy("cache-1", b, 2);
    expect(p3).not.toBe(p2);
    expect(getCompiledPolicy("cache-1", b, 2)).toBe(p3);
  });
  it("keys by bucket: the same text in two buckets is validated against each", () => {
    const text = doc([stmt()]);
    expect(getCompiledPolicy(BUCKET, text)).not.toBeNull();
    expect(() => getCompiledPolicy("another", text)).toThrow(/invalid resource/);
  });
  it("returns null for no policy and forgets the bucket", () => {
    getCompiledPolicy("cache-2", doc([stmt()]).replace(/bkt/g, "cache-2"));
    const before = policyCacheSize();
    expect(getCompiledPolicy("cache-2", null)).toBeNull();
    expect(policyCacheSize()).toBe(before - 1);
    expect(getCompiledPolicy("cache-2", "")).toBeNull();
  });
  it("does not cache a policy that fails validation", () => {
    const before = policyCacheSize();
    expect(() => getCompiledPolicy("cache-3", "{nope")).toThrow(S3Error);
    expect(policyCacheSize()).toBe(before);
  });
  it("invalidatePolicy drops an entry", () => {
    const text = doc([stmt()]).replace(/bkt/g, "cache-4");
    const p = getCompiledPolicy("cache-4", text);
    invalidatePolicy("cache-4");
    expect(getCompiledPolicy("cache-4", text)).not.toBe(p);
  });
  it("is bounded, evicting the least recently used", () => {
    const text = (b: string) => doc([stmt({ Resource: `arn:aws:s3:::${b}/*` })]);
    const hot = getCompiledPolicy("hot", text("hot"));
    for (let i = 0; i < MAX_CACHED_POLICIES + 50; i++) {
      getCompiledPolicy(`b-${i}`, text(`b-${i}`));
      if (i % 10 === 0) expect(getCompiledPolicy("hot", text("hot"))).toBe(hot); // kept warm
    }
    expect(policyCacheSize()).toBe(MAX_CACHED_POLICIES);
    expect(getCompiledPolicy("hot", text("hot"))).toBe(hot);
    const cold = getCompiledPolicy("b-0", text("b-0")); // evicted long ago: a fresh parse
    expect(cold).not.toBeNull();
  });
});

describe("Glob", () => {
  const cases: [string, string, boolean, boolean?][] = [
    ["", "", true],
    ["", "a", false],
    ["*", "", true],
    ["*", "anything/at all", true],
    ["a*", "a", true],
    ["*a", "ba", true],
    ["*a", "ab", false],
    ["a*b*c", "abc", true],
    ["a*b*c", "aXbYc", true],
    ["a*b*c", "acb", false],
    ["ab*ba", "aba", false],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["*?", "", false],
    ["*?", "x", true],
    ["a*?b", "ab", false],
    ["a*?b", "axb", true],
    ["s3:get*", "s3:GetObject", true, true],
    ["s3:get*", "s3:GetObject", false, false],
    ["x.y", "xzy", false],
  ];
  it.each(cases)("%j ~ %j → %s", (pattern, subject, expected, ic = false) => {
    expect(Glob.of(pattern, ic).test(subject)).toBe(expected);
  });
  // No timing assertion (timings belong in the benchmark): a backtracking matcher would try
  // about C(1024, 8) ≈ 10^19 splits here and never finish within the test's time limit.
  it("does not backtrack catastrophically (tenant-controlled patterns)", () => {
    const g = Glob.of("*a*a*a*a*a*a*a*a*b");
    const subject = "a".repeat(1024);
    for (let i = 0; i < 100; i++) expect(g.test(subject)).toBe(false);
    expect(Glob.of("*a*a*a*a*a*a*a*a*b").test(subject + "b")).toBe(true);
  });
});

describe("IP parsing", () => {
  it.each<[string, number[] | null]>([
    ["192.0.2.1", [192, 0, 2, 1]],
    ["0.0.0.0", [0, 0, 0, 0]],
    ["256.0.0.1", null],
    ["01.2.3.4", null],
    ["1.2.3", null],
    ["::1", [...Array(15).fill(0), 1]],
    ["::", Array(16).fill(0)],
    ["2001:db8::ff00:42:8329", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]],
    ["2001:0db8:0000:0000:0000:ff00:0042:8329", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]],
    ["::ffff:192.0.2.1", [192, 0, 2, 1]],
    ["64:ff9b::192.0.2.1", [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]],
    ["1::2::3", null],
    ["1:2:3:4:5:6:7:8:9", null],
    ["1:2:3:4:5:6:7::8", null],
    ["fe80::1%eth0", null],
    ["12345::", null],
    ["g::1", null],
    ["1:", null],
  ])("%s", (text, bytes) => {
    const ip = parseIp(text);
    expect(ip ? [...ip] : null).toEqual(bytes);
  });
  it("parses CIDRs and checks containment at bit granularity", () => {
    const c = parseCidr("2001:db8:8000::/33");
    expect(c?.prefix).toBe(33);
    expect(cidrContains(c!, parseIp("2001:db8:8000::1")!)).toBe(true);
    expect(cidrContains(c!, parseIp("2001:db8:7fff::1")!)).toBe(false);
    expect(cidrContains(parseCidr("::/0")!, parseIp("2001:db8::1")!)).toBe(true);
    expect(cidrContains(parseCidr("::/0")!, parseIp("192.0.2.1")!)).toBe(false);
    expect(parseCidr("10.0.0.0/")).toBeNull();
    expect(parseCidr("10.0.0.0/-1")).toBeNull();
    expect(parseCidr("::/129")).toBeNull();
  });
});
