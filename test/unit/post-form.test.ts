import { describe, expect, it } from "vitest";
import { checkPostPolicy, contentLengthRange, parsePostPolicy, parsePostSignature } from "../../src/auth/post-policy";
import { S3Error } from "../../src/errors";
import { postFormReader } from "../../src/s3/post-form";
import { expectS3Error } from "../support/sigv4-oracle";
import { encodePolicy, multipartBody, type Part } from "../support/post-form";
import { concatBytes } from "../support/sources";

const encoder = new TextEncoder();

/** A request whose body arrives in pieces of `piece` bytes (boundaries split anywhere). */
function request(body: Uint8Array, contentType: string, piece = body.byteLength): Request {
  let offset = 0;
  // A byte stream, as workerd's request bodies are (the reader reads them with BYOB).
  const stream = new ReadableStream({
    type: "bytes" as never,
    pull(controller: ReadableByteStreamController) {
      if (offset >= body.byteLength) return controller.close();
      controller.enqueue(body.slice(offset, offset + piece));
      offset += piece;
    },
  });
  return new Request("https://gw.test/b", { method: "POST", headers: { "content-type": contentType }, body: stream, duplex: "half" } as RequestInit);
}

async function readAll(source: { read(max: number): Promise<Uint8Array> }, max = 1000): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for (;;) {
    const p = await source.read(max);
    if (p.byteLength === 0) break;
    pieces.push(p.slice());
  }
  return concatBytes(pieces);
}

describe("post form reader", () => {
  const file = new Uint8Array(70_000).map((_, i) => (i * 31) & 255);
  const parts: Part[] = [
    { name: "Key", value: "a/${filename}" },
    { name: "x-amz-meta-note", value: "héllo", filename: "ignored.txt" },
    { name: "file", file, filename: "data.bin", contentType: "application/x-test" },
    { name: "after", value: "ignored" },
  ];

  for (const piece of [1, 7, 4096, 1 << 20]) {
    it(`reads fields and streams the file with the body in ${piece}-byte pieces`, async () => {
      const { body, contentType } = multipartBody(parts, "--x--");
      const reader = postFormReader(request(body, contentType, piece));
      const form = await reader.readFields();
      expect([...form.fields.keys()]).toEqual(["key", "x-amz-meta-note"]);
      expect(form.fields.get("key")).toEqual({ name: "Key", value: "a/${filename}" });
      expect(form.fields.get("x-amz-meta-note")?.value).toBe("héllo");
      expect(form.file?.filename).toBe("data.bin");
      expect(form.file?.contentType).toBe("application/x-test");
      const got = await readAll(form.file!.source, 3000);
      expect(got).toEqual(file);
      // Reads return `max` bytes except at the end.
      expect((await form.file!.source.read(10)).byteLength).toBe(0);
    });
  }

  it("decodes RFC 5987 filenames and ignores a second file part", async () => {
    const boundary = "b0undary";
    const body = encoder.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="FILE"; filename*=UTF-8''na%C3%AFve%20plan.txt\r\n\r\nfirst\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="second"\r\n\r\nsecond\r\n--${boundary}--\r\n`,
    );
    const form = await postFormReader(request(body, `multipart/form-data; boundary=${boundary}`)).readFields();
    expect(form.file?.filename).toBe("naïve plan.txt");
    expect(new TextDecoder().decode(await readAll(form.file!.source))).toBe("first");
  });

  it("refuses a body cut off inside the file, a part without a name, and oversize fields", async () => {
    const { body, contentType } = multipartBody(parts);
    const cut = postFormReader(request(body.subarray(0, 50_000), contentType));
    const form = await cut.readFields();
    await expectS3Error(readAll(form.file!.source), "MalformedPOSTRequest");

    const nameless = encoder.encode(`--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n`);
    await expectS3Error(postFormReader(request(nameless, "multipart/form-data; boundary=b")).readFields(), "MalformedPOSTRequest");

    const big = multipartBody([{ name: "x-ignore-a", value: "a".repeat(15_000) }, { name: "x-ignore-b", value: "b".repeat(15_000) }, { name: "file", file: "x" }]);
    await expectS3Error(postFormReader(request(big.body, big.contentType)).readFields(), "MaxPostPreDataLengthExceededError");
  });

  it("reports a form without file part as such (file: null)", async () => {
    const { body, contentType } = multipartBody([{ name: "key", value: "k" }]);
    const form = await postFormReader(request(body, contentType)).readFields();
    expect(form.file).toBeNull();
    expect(form.fields.get("key")?.value).toBe("k");
  });
});

describe("post policy", () => {
  const fields = (o: Record<string, string>) => new Map(Object.entries(o));

  it("parses conditions in all three forms and keeps the tightest length range", () => {
    const policy = parsePostPolicy(
      encodePolicy([{ bucket: "b", key: "k" }, ["eq", "$Content-Type", "text/plain"], ["starts-with", "$x-amz-meta-a", ""], ["content-length-range", 1, "100"], ["CONTENT-LENGTH-RANGE", 10, 1000]]),
    );
    expect(policy.conditions.filter((c) => c.kind === "eq").map((c) => (c as { field: string }).field)).toEqual(["bucket", "key", "content-type"]);
    expect(contentLengthRange(policy)).toEqual({ min: 10, max: 100 });
    expect(() => checkPostPolicy(policy, fields({ key: "k", "content-type": "text/plain", "x-amz-meta-a": "z" }), "b")).not.toThrow();
  });

  it("rejects malformed documents with InvalidPolicyDocument", async () => {
    const bad = [
      btoa("{"),
      "not base64!",
      btoa(JSON.stringify([])),
      btoa(JSON.stringify({ expiration: "2030-01-01T00:00:00Z", conditions: {} })),
      btoa(JSON.stringify({ expiration: "2030-01-01T00:00:00Z", conditions: [["content-length-range", 5, 1]] })),
      btoa(JSON.stringify({ expiration: "2030-01-01T00:00:00Z", conditions: [["content-length-range", -1, 1]] })),
      btoa(JSON.stringify({ expiration: "2030-01-01T00:00:00Z", conditions: [["eq", "key", "x"]] })),
      btoa(JSON.stringify({ expiration: "2030-01-01T00:00:00Z", conditions: [["starts-with", "$key"]] })),
      btoa(JSON.stringify({ expiration: "2030-01-01T00:00:00Z", conditions: [{}] })),
      btoa(JSON.stringify({ expiration: "2030-01-01T00:00:00Z", conditions: ["key"] })),
    ];
    for (const text of bad) await expectS3Error(() => parsePostPolicy(text), "InvalidPolicyDocument");
  });

  it("checks expiry first, then conditions, then extra fields", () => {
    const expired = parsePostPolicy(encodePolicy([{ key: "x" }], -1));
    expect(() => checkPostPolicy(expired, fields({ key: "y", extra: "1" }), "b")).toThrow("Policy expired.");
    const policy = parsePostPolicy(encodePolicy([{ key: "x" }]));
    expect(() => checkPostPolicy(policy, fields({ key: "y", extra: "1" }), "b")).toThrow('["eq", "$key", "x"]');
    try {
      checkPostPolicy(policy, fields({ key: "x", extra: "1", "x-ignore-me": "", file: "", policy: "", "x-amz-signature": "", awsaccesskeyid: "", signature: "" }), "b");
      expect.unreachable();
    } catch (e) {
      expect((e as S3Error).message).toBe("Invalid according to Policy: Extra input fields: extra");
    }
  });

  it("tells SigV4, SigV2 and anonymous forms apart and names missing fields", async () => {
    const region = { region: "us-east-1" };
    expect(parsePostSignature(fields({ key: "k" }), region)).toEqual({ version: "anonymous" });
    expect(parsePostSignature(fields({ policy: "p", awsaccesskeyid: "AK", signature: "s" }), region)).toMatchObject({ version: "v2", accessKeyId: "AK" });
    const v4 = { policy: "p", "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": "AK/20260102/us-east-1/s3/aws4_request", "x-amz-date": "20260102T030405Z", "x-amz-signature": "ab" };
    expect(parsePostSignature(fields(v4), region)).toMatchObject({ version: "v4", accessKeyId: "AK", dateStamp: "20260102" });
    await expectS3Error(() => parsePostSignature(fields({ ...v4, "x-amz-date": "20260103T000000Z" }), region), "InvalidArgument", undefined, /credential date/);
    await expectS3Error(() => parsePostSignature(fields({ ...v4, "x-amz-algorithm": "AWS4-HMAC-SHA1" }), region), "InvalidArgument");
    await expectS3Error(() => parsePostSignature(fields({ ...v4, "x-amz-credential": "AK/20260102/us-east-1/iam/aws4_request" }), region), "InvalidArgument", undefined, /service/);
    const { "x-amz-signature": _, ...unsigned } = v4;
    await expectS3Error(() => parsePostSignature(fields(unsigned), region), "InvalidArgument", { ArgumentName: "x-amz-signature" });
    const { policy: __, ...noPolicy } = v4;
    await expectS3Error(() => parsePostSignature(fields(noPolicy), region), "InvalidArgument", { ArgumentName: "policy" });
    await expectS3Error(() => parsePostSignature(fields({ ...v4, awsaccesskeyid: "AK" }), region), "InvalidArgument", undefined, /Only one auth mechanism/);
  });
});
