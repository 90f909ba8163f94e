import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { openBody, type BodySource } from "../../src/auth/body";
import { parseAuth, verifySigV4, type VerifiedSigV4 } from "../../src/auth/sigv4";
import { drain, encodeAwsChunked, firstDifference, piecewiseStream, randomBytes, splitSizes, type Mode } from "../support/chunked-encoder";
import { HOST, REGION, SECRET, expectS3Error, presign, signHeader, signer, toFetch } from "../support/sigv4-oracle";

const NOW = new Date("2026-11-27T12:00:00Z");
const DATETIME = "20261127T120000Z";
const SCOPE = `20261127/${REGION}/s3/aws4_request`;
const EXPECTED = { region: REGION, service: "s3", now: NOW.getTime() };

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const hex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const sha256 = async (data: Uint8Array) => hex(await crypto.subtle.digest("SHA-256", data));
const md5b64 = async (data: Uint8Array) => b64(new Uint8Array(await crypto.subtle.digest("MD5", data)));
const crc32b64 = (data: Uint8Array) => {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, crc32(data));
  return b64(out);
};

async function verified(request: Request): Promise<VerifiedSigV4> {
  const auth = parseAuth(request);
  if (auth.kind !== "header" && auth.kind !== "query") throw new Error("not v4");
  return verifySigV4(request, auth, SECRET, EXPECTED);
}

/** Same URL, method and headers; a different body (what a corrupting proxy would send). */
function withBody(request: Request, body: BodyInit | null): Request {
  return new Request(request.url, { method: request.method, headers: request.headers, body });
}

/** A header-signed PUT whose signed headers are `headers` and whose body is `body`. */
async function signedPut(body: Uint8Array, headers: Record<string, string>): Promise<Request> {
  return withBody(await signHeader({ method: "PUT", path: "/bucket/key", headers }, NOW), body);
}

async function readAll(source: BodySource, max = 65536): Promise<Uint8Array> {
  return drain(source, max);
}

describe("plain bodies", () => {
  const data = randomBytes(100_000);

  it("verifies a hex x-amz-content-sha256 while streaming", async () => {
    const req = await signedPut(data, { "x-amz-content-sha256": await sha256(data) });
    const body = openBody(req, await verified(req), { computeMd5: false });
    expect(firstDifference(await readAll(body), data)).toBeNull();
    expect(body.result).toEqual({});
    expect((await body.read(10)).byteLength).toBe(0); // stays at the end
  });

  it("a different body of the same length fails only at the end, with both hashes", async () => {
    const claimed = await sha256(data);
    const req = await signedPut(data, { "x-amz-content-sha256": claimed });
    const tampered = data.slice();
    tampered[99_999]! ^= 1;
    const body = openBody(withBody(req, tampered), await verified(req), { computeMd5: false });
    // Every byte is handed out before the verdict; the verdict replaces the end marker.
    let seen = 0;
    const e = await expectS3Error(
      (async () => {
        for (;;) {
          const piece = await body.read(30_000);
          if (piece.byteLength === 0) return;
          seen += piece.byteLength;
        }
      })(),
      "XAmzContentSHA256Mismatch",
      { ClientComputedContentSHA256: claimed, S3ComputedContentSHA256: await sha256(tampered) },
    );
    expect(seen).toBe(100_000);
    expect(e.status).toBe(400);
    // Sticky: the error again, never an end marker.
    await expectS3Error(body.read(10), "XAmzContentSHA256Mismatch");
  });

  it("UNSIGNED-PAYLOAD and presigned bodies have no hash to verify; anonymous ignores a sent hash", async () => {
    const req = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" });
    expect(firstDifference(await readAll(openBody(req, await verified(req), { computeMd5: false })), data)).toBeNull();
    const pre = withBody(await presign({ method: "PUT", path: "/bucket/key" }, NOW), data);
    expect(firstDifference(await readAll(openBody(pre, await verified(pre), { computeMd5: false })), data)).toBeNull();
    const anon = new Request("https://h/b/k", { method: "PUT", body: data, headers: { "x-amz-content-sha256": "0".repeat(64) } });
    expect(firstDifference(await readAll(openBody(anon, null, { computeMd5: false })), data)).toBeNull();
  });

  it("refuses an x-amz-content-sha256 that is neither a hash nor a known mode", async () => {
    const req = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED" });
    await expectS3Error(async () => openBody(req, await verified(req), { computeMd5: false }), "InvalidArgument", { ArgumentName: "x-amz-content-sha256" });
  });

  it("Content-MD5: verified, InvalidDigest when malformed, BadDigest when wrong; MD5 only when asked", async () => {
    const good = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-md5": await md5b64(data) });
    const body = openBody(good, await verified(good), { computeMd5: false });
    await readAll(body);
    expect(b64(body.result.md5!)).toBe(await md5b64(data));

    const wrong = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-md5": await md5b64(data.subarray(1)) });
    await expectS3Error(readAll(openBody(wrong, await verified(wrong), { computeMd5: false })), "BadDigest", undefined, "The Content-MD5 you specified did not match what we received.");

    for (const bad of ["not base64!", b64(new Uint8Array(15)), "AAAA"]) {
      const req = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-md5": bad });
      await expectS3Error(async () => openBody(req, await verified(req), { computeMd5: false }), "InvalidDigest");
    }

    const plain = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" });
    const without = openBody(plain, await verified(plain), { computeMd5: false });
    await readAll(without);
    expect(without.result.md5).toBeUndefined();
    const withMd5 = openBody(withBody(plain, data), await verified(plain), { computeMd5: true });
    await readAll(withMd5);
    expect(b64(withMd5.result.md5!)).toBe(await md5b64(data));
  });

  it("x-amz-checksum-*: verified and echoed; wrong → BadDigest; malformed → InvalidRequest", async () => {
    const sha1 = b64(new Uint8Array(await crypto.subtle.digest("SHA-1", data)));
    for (const [name, value, algorithm] of [
      ["x-amz-checksum-crc32", crc32b64(data), "CRC32"],
      ["x-amz-checksum-sha1", sha1, "SHA1"],
    ] as const) {
      const req = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", [name]: value, "x-amz-sdk-checksum-algorithm": algorithm });
      const body = openBody(req, await verified(req), { computeMd5: false });
      await readAll(body);
      expect(body.result.checksum).toEqual({ algorithm, value });
    }
    const wrong = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-checksum-crc32": crc32b64(data.subarray(1)) });
    await expectS3Error(readAll(openBody(wrong, await verified(wrong), { computeMd5: false })), "BadDigest", undefined, "The CRC32 you specified did not match the calculated checksum.");
    for (const bad of ["AAAAAAA=", "AAA", "!!!!"]) {
      const req = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-checksum-crc32": bad });
      await expectS3Error(async () => openBody(req, await verified(req), { computeMd5: false }), "InvalidRequest", undefined, "Value for x-amz-checksum-crc32 header is invalid.");
    }
  });

  it("one checksum algorithm per request, consistent with x-amz-sdk-checksum-algorithm", async () => {
    const two = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-checksum-crc32": crc32b64(data), "x-amz-checksum-crc32c": "AAAAAA==" });
    await expectS3Error(async () => openBody(two, await verified(two), { computeMd5: false }), "InvalidRequest", undefined, /Multiple checksum Types are not allowed/);
    const mismatch = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-checksum-crc32": crc32b64(data), "x-amz-sdk-checksum-algorithm": "SHA256" });
    await expectS3Error(async () => openBody(mismatch, await verified(mismatch), { computeMd5: false }), "InvalidRequest");
    const alone = await signedPut(data, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-sdk-checksum-algorithm": "CRC32" });
    await expectS3Error(async () => openBody(alone, await verified(alone), { computeMd5: false }), "InvalidRequest", undefined, /no corresponding x-amz-checksum-\* or x-amz-trailer/);
  });

  it("a body shorter than Content-Length is IncompleteBody", async () => {
    const req = new Request("https://h/b/k", { method: "PUT", body: piecewiseStream(data.subarray(0, 1000), [100]), headers: { "content-length": "1001" } });
    await expectS3Error(readAll(openBody(req, null, { computeMd5: false })), "IncompleteBody");
  });

  it("an empty body", async () => {
    const req = await signedPut(new Uint8Array(0), { "x-amz-content-sha256": await sha256(new Uint8Array(0)) });
    const body = openBody(withBody(req, null), await verified(req), { computeMd5: true });
    expect((await body.read(100)).byteLength).toBe(0);
    expect(b64(body.result.md5!)).toBe("1B2M2Y8AsgTpgAmY7PhCfg==");
  });
});

/** Signs the headers with smithy, then encodes the body with the seed from the result. */
async function chunkedUpload(payload: Uint8Array, mode: Mode, opts: { chunk?: number; trailer?: [string, string]; headers?: Record<string, string>; corrupt?: (wire: Uint8Array) => Uint8Array } = {}) {
  const headers: Record<string, string> = {
    "x-amz-content-sha256": mode,
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": String(payload.byteLength),
    ...(opts.trailer ? { "x-amz-trailer": opts.trailer[0] } : {}),
    ...opts.headers,
  };
  const signedReq = await signHeader({ method: "PUT", path: "/bucket/key", headers }, NOW);
  const seed = /Signature=([0-9a-f]{64})/.exec(signedReq.headers.get("authorization")!)![1]!;
  let wire = await encodeAwsChunked(payload, {
    mode,
    chunks: splitSizes(payload.byteLength, opts.chunk ?? 65536),
    signing: mode.startsWith("STREAMING-AWS4") ? { date: NOW, datetime: DATETIME, scope: SCOPE, seed } : undefined,
    trailers: opts.trailer ? [opts.trailer] : undefined,
  });
  if (opts.corrupt) wire = opts.corrupt(wire);
  return withBody(signedReq, wire);
}

describe("aws-chunked bodies through openBody", () => {
  const payload = randomBytes(300_000);

  it("signed streaming (with and without a signed trailer) decodes and verifies end to end", async () => {
    const req = await chunkedUpload(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", { headers: { "content-md5": await md5b64(payload) } });
    const body = openBody(req, await verified(req), { computeMd5: false });
    expect(body.length).toBe(300_000);
    expect(firstDifference(await readAll(body), payload)).toBeNull();
    expect(b64(body.result.md5!)).toBe(await md5b64(payload));

    const trailer = await chunkedUpload(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", { trailer: ["x-amz-checksum-crc32", crc32b64(payload)] });
    const tb = openBody(trailer, await verified(trailer), { computeMd5: false });
    expect(firstDifference(await readAll(tb), payload)).toBeNull();
    expect(tb.result.checksum).toEqual({ algorithm: "CRC32", value: crc32b64(payload) });
  });

  it("a corrupted chunk is SignatureDoesNotMatch; errors are sticky", async () => {
    const req = await chunkedUpload(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", {
      corrupt: (w) => {
        const c = w.slice();
        c[200_000]! ^= 1;
        return c;
      },
    });
    const body = openBody(req, await verified(req), { computeMd5: false });
    await expectS3Error(readAll(body), "SignatureDoesNotMatch");
    await expectS3Error(body.read(1), "SignatureDoesNotMatch");
  });

  it("SDK v3 default (STREAMING-UNSIGNED-PAYLOAD-TRAILER + CRC32 trailer), signed, presigned or anonymous", async () => {
    const trailer: [string, string] = ["x-amz-checksum-crc32", crc32b64(payload)];
    const req = await chunkedUpload(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", { trailer, headers: { "x-amz-sdk-checksum-algorithm": "CRC32" } });
    const body = openBody(req, await verified(req), { computeMd5: true });
    expect(firstDifference(await readAll(body, 65536), payload)).toBeNull();
    expect(body.result.checksum).toEqual({ algorithm: "CRC32", value: trailer[1] });

    // No Content-Encoding (some clients omit it) and no auth at all.
    const anon = new Request("https://h/b/k", {
      method: "PUT",
      headers: { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "300000", "x-amz-trailer": "x-amz-checksum-crc32" },
      body: await encodeAwsChunked(payload, { mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", chunks: splitSizes(300_000, 10_000), trailers: [trailer] }),
    });
    expect(firstDifference(await readAll(openBody(anon, null, { computeMd5: false })), payload)).toBeNull();

    // Presigned with the encoding headers signed (kept as headers, not hoisted to the query).
    const streamingHeaders = Object.fromEntries(anon.headers);
    const presigned = await signer().presign(
      { method: "PUT", protocol: "https:", hostname: HOST, path: "/bucket/key", query: {}, headers: { host: HOST, ...streamingHeaders } },
      { signingDate: NOW, expiresIn: 60, unhoistableHeaders: new Set(Object.keys(streamingHeaders)) },
    );
    const preq = toFetch(presigned as never, await encodeAwsChunked(payload, { mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", chunks: [300_000], trailers: [trailer] }));
    expect(preq.url).toContain("X-Amz-SignedHeaders=host%3Bx-amz-content-sha256");
    const pb = openBody(preq, await verified(preq), { computeMd5: false });
    expect(firstDifference(await readAll(pb), payload)).toBeNull();
    expect(pb.result.checksum?.value).toBe(trailer[1]);
    // The same headers added to a URL that did not sign them are refused by the verifier.
    const unsignedHeaders = new Request((await presign({ method: "PUT", path: "/bucket/key" }, NOW)).url, { method: "PUT", headers: anon.headers });
    await expectS3Error(verified(unsignedHeaders), "AccessDenied", { HeadersNotSigned: "x-amz-decoded-content-length, x-amz-trailer" });
  });

  it("unsigned trailer: corrupted data or trailer value is BadDigest, a garbled value InvalidRequest", async () => {
    const good = crc32b64(payload);
    const flipData = await chunkedUpload(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", {
      trailer: ["x-amz-checksum-crc32", good],
      corrupt: (w) => {
        const c = w.slice();
        c[100]! ^= 1;
        return c;
      },
    });
    await expectS3Error(readAll(openBody(flipData, await verified(flipData), { computeMd5: false })), "BadDigest", undefined, "The CRC32 you specified did not match the calculated checksum.");
    const otherValue = await chunkedUpload(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", { trailer: ["x-amz-checksum-crc32", crc32b64(payload.subarray(1))] });
    await expectS3Error(readAll(openBody(otherValue, await verified(otherValue), { computeMd5: false })), "BadDigest");
    const garbled = await chunkedUpload(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", { trailer: ["x-amz-checksum-crc32", "AAAA"] });
    await expectS3Error(readAll(openBody(garbled, await verified(garbled), { computeMd5: false })), "InvalidRequest", undefined, /x-amz-checksum-crc32 trailing header is invalid/);
  });

  it("header problems are refused before any byte is read", async () => {
    const noLength = await chunkedUpload(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", { headers: { "x-amz-decoded-content-length": "" } });
    const withoutLength = new Request(noLength.url, { method: "PUT", headers: [...noLength.headers].filter(([n]) => n !== "x-amz-decoded-content-length") });
    await expectS3Error(() => openBody(withoutLength, null, { computeMd5: false }), "MissingContentLength");
    const headerAndTrailer = await chunkedUpload(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", {
      trailer: ["x-amz-checksum-crc32", crc32b64(payload)],
      headers: { "x-amz-checksum-crc32": crc32b64(payload) },
    });
    await expectS3Error(async () => openBody(headerAndTrailer, await verified(headerAndTrailer), { computeMd5: false }), "InvalidRequest", undefined, /Multiple checksum/);
    const unknownTrailer = await chunkedUpload(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", { headers: { "x-amz-trailer": "x-amz-meta-a" } });
    await expectS3Error(async () => openBody(unknownTrailer, await verified(unknownTrailer), { computeMd5: false }), "InvalidRequest");
    const trailerWithoutTrailerMode = await chunkedUpload(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", { headers: { "x-amz-trailer": "x-amz-checksum-crc32" } });
    await expectS3Error(async () => openBody(trailerWithoutTrailerMode, await verified(trailerWithoutTrailerMode), { computeMd5: false }), "InvalidRequest");
    // Signed streaming needs a signed seed: neither anonymous nor presigned requests have one.
    const anon = new Request("https://h/b/k", { method: "PUT", headers: { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-decoded-content-length": "1" } });
    await expectS3Error(() => openBody(withBody(anon, new Uint8Array(1)), null, { computeMd5: false }), "InvalidArgument", { ArgumentName: "x-amz-content-sha256" });
    const presignedStreaming = await presign({ method: "PUT", path: "/bucket/key" }, NOW);
    const withQueryClaim = new Request(presignedStreaming.url.replace("UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), { method: "PUT" });
    await expectS3Error(async () => openBody(withQueryClaim, { ...(await verified(presignedStreaming)), payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" }, { computeMd5: false }), "InvalidArgument");
  });

  it("feeds a native request body through BYOB in big pieces and a JS stream through the fallback", async () => {
    const trailer: [string, string] = ["x-amz-checksum-crc32", crc32b64(payload)];
    const wire = await encodeAwsChunked(payload, { mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", chunks: splitSizes(300_000, 8192), trailers: [trailer] });
    const headers = { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "300000", "x-amz-trailer": trailer[0] };
    for (const body of [wire, piecewiseStream(wire, [4096, 1, 65539]), piecewiseStream(wire, [4096, 1, 65539], "bytes")]) {
      const req = new Request("https://h/b/k", { method: "PUT", headers, body });
      const source = openBody(req, null, { computeMd5: false });
      expect(firstDifference(await readAll(source, 100_000), payload)).toBeNull();
      expect(source.result.checksum?.value).toBe(trailer[1]);
    }
  });
});
