import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import { describe, expect, it } from "vitest";
import {
  canonicalUris,
  checkSigV4,
  parseAuth,
  sha256Hex,
  signV2,
  signingKey,
  stringToSignV2,
  verifySigV2,
  verifySigV4,
  type Expected,
  type SigV4Auth,
} from "../../src/auth/sigv4";
import { AK, HOST, REGION, SECRET, encodeKey, expectS3Error, presign, signHeader, signer, strictEncode, toFetch, type OracleRequest } from "../support/sigv4-oracle";

const NOW = new Date("2026-11-27T12:00:00Z");
const EXPECTED: Expected = { region: REGION, service: "s3", now: NOW.getTime() };

function v4(request: Request): SigV4Auth {
  const auth = parseAuth(request);
  if (auth.kind !== "header" && auth.kind !== "query") throw new Error(`not v4: ${auth.kind}`);
  return auth;
}

const verify = (request: Request, expected: Expected = EXPECTED, secret = SECRET) => verifySigV4(request, v4(request), secret, expected);

/** Rebuilds `request` with one thing changed, keeping everything else byte for byte. */
function mutate(request: Request, change: { method?: string; url?: (u: string) => string; headers?: (h: Headers) => void }): Request {
  const headers = new Headers(request.headers);
  change.headers?.(headers);
  return new Request(change.url ? change.url(request.url) : request.url, { method: change.method ?? request.method, headers });
}

const flipLastHex = (s: string) => s.slice(0, -1) + (s.endsWith("0") ? "1" : "0");

describe("AWS documentation example (GET /test.txt with Range)", () => {
  const authorization =
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," +
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
  const build = (auth = authorization, range = "bytes=0-9") =>
    new Request("https://examplebucket.s3.amazonaws.com/test.txt", {
      headers: {
        authorization: auth,
        range,
        "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date": "20130524T000000Z",
      },
    });
  const expected: Expected = { region: "us-east-1", service: "s3", now: Date.UTC(2013, 4, 24, 0, 5) };

  it("verifies, with the documented canonical request", async () => {
    const verified = await verify(build(), expected);
    expect(verified.canonicalRequest).toBe(
      [
        "GET",
        "/test.txt",
        "",
        "host:examplebucket.s3.amazonaws.com",
        "range:bytes=0-9",
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date:20130524T000000Z",
        "",
        "host;range;x-amz-content-sha256;x-amz-date",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      ].join("\n"),
    );
    expect(verified.stringToSign).toBe(
      "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
    );
    expect(verified.seedSignature).toBe("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  });

  it("tolerates the separator variants clients produce", async () => {
    for (const sep of [", ", ",", " ", " , "]) {
      const header = authorization.replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256  ").replaceAll(",", sep);
      await verify(build(header), expected);
    }
  });

  it("rejects a changed Range value and a changed signature with SignatureDoesNotMatch and AWS's details", async () => {
    const e = await expectS3Error(verify(build(authorization, "bytes=0-8"), expected), "SignatureDoesNotMatch", {
      AWSAccessKeyId: "AKIAIOSFODNN7EXAMPLE",
      SignatureProvided: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    });
    expect(e.status).toBe(403);
    expect(e.details.CanonicalRequest).toContain("range:bytes=0-8");
    expect(e.details.StringToSign).toMatch(/^AWS4-HMAC-SHA256\n20130524T000000Z\n/);
    expect(JSON.stringify(e.details)).not.toContain(SECRET);
    await expectS3Error(verify(build(flipLastHex(authorization)), expected), "SignatureDoesNotMatch");
  });
});

// Keys and queries chosen to exercise encoding: unicode, spaces, "+", "=", "~", reserved
// characters, empty values, repeated keys.
const CASES: { name: string; request: OracleRequest }[] = [
  { name: "simple GET", request: { method: "GET", path: "/bucket/key.txt" } },
  { name: "unicode + spaces + reserved chars key", request: { method: "GET", path: "/bucket/" + encodeKey("dir/ünïcødé 文件 a+b=c&d;e,f!'()*~._-$@.txt") } },
  { name: "key with consecutive and trailing slashes", request: { method: "GET", path: "/bucket/" + encodeKey("a//b/") } },
  // Only dots that are not whole segments: workerd's URL parsing resolves "/./" and "/../"
  // (even %2e%2e) before the worker sees the request, so such keys cannot be served at all.
  { name: "dots inside segments", request: { method: "GET", path: "/bucket/" + encodeKey("a/.hidden/b..c/.../d.") } },
  { name: "bucket root", request: { method: "GET", path: "/" } },
  {
    name: "query params needing encoding",
    request: {
      method: "GET",
      path: "/bucket",
      query: { "list-type": "2", prefix: "a b+c=d/é", delimiter: "/", "continuation-token": "x~y*z", "max-keys": "" },
    },
  },
  { name: "repeated query key", request: { method: "GET", path: "/bucket", query: { tag: ["b", "a", "c c"] } } },
  { name: "unicode query key", request: { method: "GET", path: "/bucket", query: { "ключ": "значение" } } },
  {
    name: "PUT with signed payload hash and metadata headers",
    request: {
      method: "PUT",
      path: "/bucket/obj",
      headers: {
        "content-type": "text/plain",
        "x-amz-meta-note": "  spaced    value\there  ",
        "x-amz-meta-list": "1, 2,3",
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-content-sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "content-length": "5",
      },
      body: "hello",
    },
  },
  { name: "subresource without value", request: { method: "POST", path: "/bucket/obj", query: { uploads: "" }, headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } } },
];

describe("header-signed requests from the smithy oracle", () => {
  for (const { name, request } of CASES) {
    it(`${name}: accepted, and any single change rejected`, async () => {
      const req = await signHeader({ ...request, headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...request.headers } }, NOW);
      const verified = await verify(req);
      expect(verified.kind).toBe("header");
      expect(verified.accessKeyId).toBe(AK);

      await expectS3Error(verify(mutate(req, { method: req.method === "GET" ? "HEAD" : "GET" })), "SignatureDoesNotMatch");
      // One byte of the path.
      await expectS3Error(verify(mutate(req, { url: (u) => u.replace(HOST + "/", HOST + "/x") })), "SignatureDoesNotMatch");
      // One byte of the query: add a parameter, or change the first value's last byte.
      await expectS3Error(verify(mutate(req, { url: (u) => u + (u.includes("?") ? "&" : "?") + "z" })), "SignatureDoesNotMatch");
      // A signed header value.
      await expectS3Error(verify(mutate(req, { headers: (h) => h.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD".toLowerCase()) })), "SignatureDoesNotMatch");
      // The date, one second later (well within skew).
      await expectS3Error(
        verify(mutate(req, { headers: (h) => h.set("x-amz-date", h.get("x-amz-date")!.replace(/(\d)Z$/, (_, d) => `${(Number(d) + 1) % 10}Z`)) })),
        "SignatureDoesNotMatch",
      );
      // The signature itself.
      await expectS3Error(verify(mutate(req, { headers: (h) => h.set("authorization", flipLastHex(h.get("authorization")!)) })), "SignatureDoesNotMatch");
      // Region in the credential (and the endpoint agreeing): only the signature catches it.
      const otherRegion = mutate(req, { headers: (h) => h.set("authorization", h.get("authorization")!.replace("/us-east-1/", "/us-east-2/")) });
      await expectS3Error(verify(otherRegion, { ...EXPECTED, region: "us-east-2" }), "SignatureDoesNotMatch");
      // Wrong secret.
      await expectS3Error(verify(req, EXPECTED, SECRET.replace("K7", "K8")), "SignatureDoesNotMatch");
    });
  }

  it("accepts a changed query value only if it was the one signed", async () => {
    const req = await signHeader({ method: "GET", path: "/bucket", query: { prefix: "abc" }, headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } }, NOW);
    await verify(req);
    await expectS3Error(verify(mutate(req, { url: (u) => u.replace("prefix=abc", "prefix=abd") })), "SignatureDoesNotMatch");
  });

  it("reads a raw '+' in the query as a space, like S3", async () => {
    const req = await signHeader({ method: "GET", path: "/bucket", query: { prefix: "a b" }, headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } }, NOW);
    expect(req.url).toContain("prefix=a%20b");
    await verify(mutate(req, { url: (u) => u.replace("a%20b", "a+b") }));
    // A literal plus must arrive encoded; "%2B" is a different value.
    await expectS3Error(verify(mutate(req, { url: (u) => u.replace("a%20b", "a%2Bb") })), "SignatureDoesNotMatch");
  });

  it("accepts lowercase-hex / loosely encoded paths that the client signed as sent (raw fallback)", async () => {
    for (const path of ["/bucket/a%2fb%c3%a9", "/bucket/it's(1)!*", "/bucket/%7Etilde"]) {
      const req = await signHeader({ method: "GET", path, headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } }, NOW);
      await verify(req);
    }
    // A decoded %2F is a "/" like any other in an S3 key; a client that signed "%2F" literally
    // is served by the raw candidate.
    expect(canonicalUris("/bucket/a%2fb", "s3")).toEqual(["/bucket/a/b", "/bucket/a%2fb"]);
    expect(canonicalUris("/bucket/a%c3%a9", "s3")).toEqual(["/bucket/a%C3%A9", "/bucket/a%c3%a9"]);
    expect(canonicalUris("/bucket/plain", "s3")).toEqual(["/bucket/plain"]);
    expect(canonicalUris("", "s3")).toEqual(["/"]);
  });

  it("accepts a strictly-encoded signature over a path the client sent loosely encoded", async () => {
    // The client signed the strict form but sent "(" unencoded (both mean the same key).
    const req = await signHeader({ method: "GET", path: "/bucket/a%28b%29", headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } }, NOW);
    await verify(mutate(req, { url: (u) => u.replace("a%28b%29", "a(b)") }));
  });

  it("canonicalises a header sent twice as the comma-joined value the worker sees", async () => {
    const req = await signHeader({ method: "GET", path: "/bucket/k", headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-meta-m": "1, 2" } }, NOW);
    const twice = mutate(req, {
      headers: (h) => {
        h.delete("x-amz-meta-m");
        h.append("x-amz-meta-m", "1");
        h.append("x-amz-meta-m", "2");
      },
    });
    expect(twice.headers.get("x-amz-meta-m")).toBe("1, 2");
    await verify(twice);
  });
});

describe("presigned URLs from the smithy oracle", () => {
  for (const { name, request } of CASES.filter((c) => c.request.method !== "PUT")) {
    it(`${name}: accepted, and any single change rejected`, async () => {
      const req = await presign(request, NOW, 600);
      expect(req.url).toContain("X-Amz-Signature=");
      const verified = await verify(req);
      expect(verified.kind).toBe("query");
      expect(verified.payloadHash).toBe("UNSIGNED-PAYLOAD");
      expect(verified.expires).toBe(600);
      await expectS3Error(verify(mutate(req, { method: "DELETE" })), "SignatureDoesNotMatch");
      await expectS3Error(verify(mutate(req, { url: (u) => u.replace(HOST + "/", HOST + "/x") })), "SignatureDoesNotMatch");
      await expectS3Error(verify(mutate(req, { url: (u) => u + "&extra=1" })), "SignatureDoesNotMatch");
      await expectS3Error(verify(mutate(req, { url: (u) => u.replace("X-Amz-Expires=600", "X-Amz-Expires=601") })), "SignatureDoesNotMatch");
      await expectS3Error(verify(mutate(req, { url: (u) => u.replace(/X-Amz-Signature=([0-9a-f]+)/, (_, s: string) => `X-Amz-Signature=${flipLastHex(s)}`) })), "SignatureDoesNotMatch");
    });
  }

  it("signs headers too (a presigned PUT with content-type)", async () => {
    const req = await presign({ method: "PUT", path: "/bucket/up", headers: { "content-type": "image/png" } }, NOW);
    await verify(req);
    await expectS3Error(verify(mutate(req, { headers: (h) => h.set("content-type", "image/gif") })), "SignatureDoesNotMatch");
  });

  it("expires, and may not come from the future beyond the skew", async () => {
    const req = await presign({ method: "GET", path: "/bucket/k" }, NOW, 60);
    await verify(req, { ...EXPECTED, now: NOW.getTime() + 60_000 });
    await expectS3Error(verify(req, { ...EXPECTED, now: NOW.getTime() + 61_000 }), "AccessDenied", {
      "X-Amz-Expires": "60",
      Expires: "2026-11-27T12:01:00Z",
      ServerTime: "2026-11-27T12:01:01Z",
    }, "Request has expired");
    await verify(req, { ...EXPECTED, now: NOW.getTime() - 15 * 60_000 });
    await expectS3Error(verify(req, { ...EXPECTED, now: NOW.getTime() - 15 * 60_000 - 1000 }), "AccessDenied", undefined, "Request is not valid yet");
  });

  it("validates X-Amz-Expires and the required parameters", async () => {
    const req = await presign({ method: "GET", path: "/bucket/k" }, NOW, 60);
    const withExpires = (v: string) => mutate(req, { url: (u) => u.replace("X-Amz-Expires=60", `X-Amz-Expires=${v}`) });
    await expectS3Error(() => parseAuth(withExpires("604801")), "AuthorizationQueryParametersError", undefined, /less than a week/);
    await expectS3Error(() => parseAuth(withExpires("-1")), "AuthorizationQueryParametersError", undefined, "X-Amz-Expires must be non-negative");
    await expectS3Error(() => parseAuth(withExpires("soon")), "AuthorizationQueryParametersError", undefined, "X-Amz-Expires should be a number");
    expect(v4(withExpires("604800")).expires).toBe(604800);
    for (const param of ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"]) {
      const without = mutate(req, { url: (u) => u.replace(new RegExp(`${param}=[^&]*&?`), "") });
      const e = await expectS3Error(() => parseAuth(without), "AuthorizationQueryParametersError");
      expect(e.status).toBe(400);
    }
    await expectS3Error(() => parseAuth(mutate(req, { url: (u) => u.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1") })), "AuthorizationQueryParametersError");
    await expectS3Error(() => parseAuth(mutate(req, { url: (u) => u.replace(/X-Amz-Date=\d+T/, "X-Amz-Date=2026-11-27T") })), "AuthorizationQueryParametersError", undefined, /ISO8601/);
    await expectS3Error(() => parseAuth(mutate(req, { url: (u) => u.replace(/X-Amz-Credential=[^&]*/, "X-Amz-Credential=AK%2F20261127") })), "AuthorizationQueryParametersError", undefined, /mal-formed/);
    // Region errors on the query path name the parameter, with the expected region.
    await expectS3Error(verify(req, { ...EXPECTED, region: "eu-west-1" }), "AuthorizationQueryParametersError", { Region: "eu-west-1" }, "Error parsing the X-Amz-Credential parameter; the region 'us-east-1' is wrong; expecting 'eu-west-1'");
  });

  it("rejects x-amz-* headers added to a presigned request", async () => {
    const req = await presign({ method: "PUT", path: "/bucket/up" }, NOW);
    const added = mutate(req, { headers: (h) => h.set("x-amz-server-side-encryption", "AES256") });
    await expectS3Error(verify(added), "AccessDenied", { HeadersNotSigned: "x-amz-server-side-encryption" }, "There were headers present in the request which were not signed");
    // Not AWS headers, and the tolerated unsigned payload header.
    await verify(mutate(req, { headers: (h) => { h.set("x-amzn-trace-id", "t"); h.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD"); h.set("user-agent", "x"); } }));
  });
});

describe("scope, time and header checks", () => {
  const base = () => signHeader({ method: "GET", path: "/bucket/k", headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } }, NOW);

  it("region, service, terminal and credential date against the endpoint, with AWS's messages", async () => {
    const req = await base();
    await expectS3Error(verify(req, { ...EXPECTED, region: "us-west-2" }), "AuthorizationHeaderMalformed", { Region: "us-west-2" },
      "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'us-west-2'");
    await expectS3Error(verify(req, { ...EXPECTED, service: "kms" }), "AuthorizationHeaderMalformed", undefined, /incorrect service "s3"/);
    const authz = (f: (a: string) => string) => mutate(req, { headers: (h) => h.set("authorization", f(h.get("authorization")!)) });
    await expectS3Error(verify(authz((a) => a.replace("aws4_request", "aws4_reqest"))), "AuthorizationHeaderMalformed", undefined, /incorrect terminal/);
    await expectS3Error(verify(authz((a) => a.replace("/20261127/", "/20261126/"))), "AuthorizationHeaderMalformed", undefined,
      'The authorization header is malformed; Invalid credential date "20261126". This date is not the same as X-Amz-Date: "20261127".');
  });

  it("garbled Authorization headers", async () => {
    const req = await base();
    const withAuth = (a: string) => mutate(req, { headers: (h) => h.set("authorization", a) });
    const sig = "Signature=" + "0".repeat(64);
    await expectS3Error(() => parseAuth(withAuth(`AWS4-HMAC-SHA256 Credential=${AK}/20261127/us-east-1/s3/aws4_request, ${sig}`)), "AuthorizationHeaderMalformed", undefined, /requires three components/);
    await expectS3Error(() => parseAuth(withAuth(`AWS4-HMAC-SHA256 Credential=${AK}/20261127/us-east-1/s3, SignedHeaders=host, ${sig}`)), "AuthorizationHeaderMalformed", undefined, /Credential is mal-formed/);
    await expectS3Error(() => parseAuth(withAuth("AWS4-HMAC-SHA256")), "AuthorizationHeaderMalformed");
    await expectS3Error(() => parseAuth(withAuth("Bearer abc")), "InvalidArgument", { ArgumentName: "Authorization" }, "Unsupported Authorization Type");
    await expectS3Error(() => parseAuth(withAuth(`AWS4-ECDSA-P256-SHA256 Credential=${AK}/20261127/s3/aws4_request`)), "InvalidArgument");
  });

  it("requires a valid date", async () => {
    const req = await base();
    await expectS3Error(() => parseAuth(mutate(req, { headers: (h) => h.delete("x-amz-date") })), "AccessDenied", undefined, "AWS authentication requires a valid Date or x-amz-date header");
    await expectS3Error(() => parseAuth(mutate(req, { headers: (h) => h.set("x-amz-date", "20261327T000000Z") })), "AccessDenied");
  });

  it("15-minute skew for header auth, with RequestTime/ServerTime/MaxAllowedSkewMilliseconds", async () => {
    const req = await base();
    await verify(req, { ...EXPECTED, now: NOW.getTime() + 15 * 60_000 });
    await verify(req, { ...EXPECTED, now: NOW.getTime() - 15 * 60_000 });
    const e = await expectS3Error(verify(req, { ...EXPECTED, now: NOW.getTime() + 15 * 60_000 + 1000 }), "RequestTimeTooSkewed", {
      RequestTime: "20261127T120000Z",
      ServerTime: "2026-11-27T12:15:01Z",
      MaxAllowedSkewMilliseconds: "900000",
    });
    expect(e.status).toBe(403);
    await expectS3Error(verify(req, { ...EXPECTED, now: NOW.getTime() - 16 * 60_000 }), "RequestTimeTooSkewed");
  });

  it("host must be signed; unsigned x-amz-* headers are refused", async () => {
    const s = signer();
    const signed = await s.sign(
      { method: "GET", protocol: "https:", hostname: HOST, path: "/bucket/k", query: {}, headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } },
      { signingDate: NOW },
    );
    await expectS3Error(verify(toFetch(signed as never)), "AccessDenied", { HeadersNotSigned: "host" });
    const req = await base();
    await expectS3Error(verify(mutate(req, { headers: (h) => h.set("x-amz-meta-a", "1") })), "AccessDenied", { HeadersNotSigned: "x-amz-meta-a" });
  });

  it("requires x-amz-content-sha256 for S3 header auth", async () => {
    const req = await signHeader({ method: "GET", path: "/bucket/k" }, NOW);
    const without = mutate(req, { headers: (h) => h.delete("x-amz-content-sha256") });
    await expectS3Error(verify(without), "InvalidRequest", undefined, "Missing required header for this request: x-amz-content-sha256");
  });

  it("refuses two auth mechanisms at once and recognises SigV2 and anonymous", async () => {
    const pre = await presign({ method: "GET", path: "/bucket/k" }, NOW);
    const both = mutate(pre, { headers: (h) => h.set("authorization", "AWS4-HMAC-SHA256 Credential=x") });
    await expectS3Error(() => parseAuth(both), "InvalidArgument", { ArgumentName: "Authorization" }, /Only one auth mechanism allowed/);
    expect(parseAuth(new Request("https://h/b/k"))).toEqual({ kind: "anonymous" });
    expect(parseAuth(new Request("https://h/b/k", { headers: { authorization: "AWS AKID:c2lnbmF0dXJl" } }))).toMatchObject({ kind: "v2", via: "header", accessKeyId: "AKID" });
    expect(parseAuth(new Request("https://h/b/k?AWSAccessKeyId=AKID&Expires=1700000000&Signature=abc%2B%3D"))).toMatchObject({
      kind: "v2", via: "query", accessKeyId: "AKID", signature: "abc+=", expires: 1700000000,
    });
    await expectS3Error(() => parseAuth(new Request("https://h/b/k?AWSAccessKeyId=AKID&Signature=x")), "AccessDenied");
  });

  it("checkSigV4 runs without the secret (callers use it before the key lookup)", async () => {
    const req = await base();
    expect(() => checkSigV4(req, v4(req), EXPECTED)).not.toThrow();
    expect(() => checkSigV4(req, v4(req), { ...EXPECTED, now: 0 })).toThrow();
  });
});

describe("KMS (service kms, generic URI rules, body hash supplied by the caller)", () => {
  it("verifies an SDK-style signed JSON POST", async () => {
    const body = JSON.stringify({ KeyId: "alias/x", Plaintext: "aGk=" });
    // botocore-style: no x-amz-content-sha256 header for non-S3 services.
    const s = new SignatureV4({ service: "kms", region: REGION, credentials: { accessKeyId: AK, secretAccessKey: SECRET }, sha256: Sha256, applyChecksum: false });
    const signed = await s.sign(
      {
        method: "POST", protocol: "https:", hostname: HOST, path: "/", query: {},
        headers: { host: HOST, "content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.Encrypt" },
        body,
      },
      { signingDate: NOW },
    );
    const req = toFetch(signed as never, body);
    const expected: Expected = { region: REGION, service: "kms", now: NOW.getTime(), payloadHash: await sha256Hex(body) };
    await verify(req, expected);
    await expectS3Error(verify(req, { ...expected, payloadHash: await sha256Hex(body + " ") }), "SignatureDoesNotMatch");
    await expectS3Error(verify(req, { ...expected, service: "s3" }), "AuthorizationHeaderMalformed");
    await expectS3Error(verify(req, { ...expected, payloadHash: undefined }), "InvalidRequest");
  });

  it("with an x-amz-content-sha256 header (SDK v3 style), the header must match the body", async () => {
    const body = "{}";
    const signed = await signer("kms").sign(
      { method: "POST", protocol: "https:", hostname: HOST, path: "/", query: {}, headers: { host: HOST, "x-amz-target": "TrentService.ListKeys" }, body },
      { signingDate: NOW },
    );
    const req = toFetch(signed as never, body);
    expect(req.headers.get("x-amz-content-sha256")).toBe(await sha256Hex(body));
    await verify(req, { region: REGION, service: "kms", now: NOW.getTime(), payloadHash: await sha256Hex(body) });
    await expectS3Error(verify(req, { region: REGION, service: "kms", now: NOW.getTime(), payloadHash: await sha256Hex("[]") }), "XAmzContentSHA256Mismatch", {
      ClientComputedContentSHA256: await sha256Hex(body),
    });
    const unsignedBody = await signer("kms").sign(
      { method: "POST", protocol: "https:", hostname: HOST, path: "/", query: {}, headers: { host: HOST, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, body },
      { signingDate: NOW },
    );
    await expectS3Error(verify(toFetch(unsignedBody as never, body), { region: REGION, service: "kms", now: NOW.getTime(), payloadHash: await sha256Hex(body) }), "XAmzContentSHA256Mismatch");
  });

  it("double-encodes and normalises paths for non-S3 services", () => {
    expect(canonicalUris("/a/./b/../c%20d", "kms")).toEqual(["/a/c%2520d"]);
  });
});

describe("signing key cache", () => {
  it("derives once per (secret, date, region, service)", async () => {
    const a = await signingKey(SECRET, "20261127", REGION, "s3");
    expect(await signingKey(SECRET, "20261127", REGION, "s3")).toBe(a);
    expect(await signingKey(SECRET, "20261128", REGION, "s3")).not.toBe(a);
    expect(await signingKey(SECRET + "x", "20261127", REGION, "s3")).not.toBe(a);
  });
});

describe("strict encoder used by the oracle helpers", () => {
  it("matches the SDK's RFC 3986 encoding", () => {
    expect(strictEncode("a b+c=d/~!*'()")).toBe("a%20b%2Bc%3Dd%2F~%21%2A%27%28%29");
  });
});

describe("SigV2 (AWS documentation examples, bucket johnsmith, virtual-hosted)", () => {
  const at = (date: string) => Date.parse(date);

  it("header auth: GET object, PUT with content-type, bucket listing", async () => {
    const examples = [
      { method: "GET", path: "/photos/puppy.jpg", date: "Tue, 27 Mar 2007 19:36:42 +0000", type: undefined, sig: "bWq2s1WEIj+Ydj0vQ697zp+IXMU=" },
      { method: "PUT", path: "/photos/puppy.jpg", date: "Tue, 27 Mar 2007 21:15:45 +0000", type: "image/jpeg", sig: "MyyxeRY7whkBe+bq8fHCL/2kKUg=" },
    ];
    for (const ex of examples) {
      const headers: Record<string, string> = { date: ex.date, authorization: `AWS ${AK}:${ex.sig}` };
      if (ex.type) headers["content-type"] = ex.type;
      const req = new Request(`https://johnsmith.s3.amazonaws.com${ex.path}`, { method: ex.method, headers });
      const auth = parseAuth(req);
      if (auth.kind !== "v2") throw new Error("expected v2");
      expect(stringToSignV2(req, auth, "/johnsmith")).toBe(`${ex.method}\n\n${ex.type ?? ""}\n${ex.date}\n/johnsmith${ex.path}`);
      await verifySigV2(req, auth, SECRET, { bucketPrefix: "/johnsmith", now: at(ex.date) + 60_000 });
      await expectS3Error(verifySigV2(req, auth, SECRET, { bucketPrefix: "/johnsmith", now: at(ex.date) + 16 * 60_000 }), "RequestTimeTooSkewed");
      await expectS3Error(verifySigV2(req, auth, SECRET, { bucketPrefix: "/johnsmit", now: at(ex.date) }), "SignatureDoesNotMatch", { AWSAccessKeyId: AK });
    }
  });

  it("query auth (legacy presigned URL) with expiry", async () => {
    const req = new Request(`https://johnsmith.s3.amazonaws.com/photos/puppy.jpg?AWSAccessKeyId=${AK}&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D`);
    const auth = parseAuth(req);
    if (auth.kind !== "v2") throw new Error("expected v2");
    expect(stringToSignV2(req, auth, "/johnsmith")).toBe("GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg");
    await verifySigV2(req, auth, SECRET, { bucketPrefix: "/johnsmith", now: 1175139620_000 });
    await expectS3Error(verifySigV2(req, auth, SECRET, { bucketPrefix: "/johnsmith", now: 1175139621_000 }), "AccessDenied", undefined, "Request has expired");
  });

  it("signV2 is base64 HMAC-SHA1; sub-resources and x-amz headers enter the string to sign", async () => {
    expect(await signV2("GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg", SECRET)).toBe("bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
    const req = new Request("https://h/b/k?versionId=v%201&uploads&prefix=ignored&acl", {
      method: "PUT",
      headers: { authorization: "AWS A:s", "x-amz-meta-b": " two  words ", "x-amz-acl": "private", "x-amz-date": "d", date: "ignored", "content-md5": "m" },
    });
    const auth = parseAuth(req);
    if (auth.kind !== "v2") throw new Error("expected v2");
    expect(stringToSignV2(req, auth)).toBe("PUT\nm\n\n\nx-amz-acl:private\nx-amz-date:d\nx-amz-meta-b:two words\n/b/k?acl&uploads&versionId=v 1");
  });
});
