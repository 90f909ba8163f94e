/**
 * Fuzzing the object surface: Range headers (single-part and multipart objects), key
 * names (unicode, controls, "%", "+", "?", "#", "//", trailing "/", 1024 bytes and more,
 * sent with the SDK's encoding and with looser client encodings), raw request paths
 * (invalid UTF-8, stray "%"), bucket names, and user metadata around S3's 2 KB limit.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { multipartPut, MiB } from "../support/multipart";
import { createBucket, sameBytes, seedIdentities, send, uniqueBucket, utf8, xmlValues } from "../support/s3-harness";
import { pseudoRandom } from "../support/sources";
import { checkResponse, expectOnlyKeys, fuzz, nastyString, sendRaw, signedRequest, writeSentinel, type Sentinel } from "./support";

const bucket = uniqueBucket("fz-obj");
let sentinel: Sentinel;
/** Keys the key-name property may leave behind mid-run (it deletes what it writes). */
const written = new Set<string>();
const MULTIPART_KEY = "multipart/ranges";
let multipartBody: Uint8Array;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  sentinel = await writeSentinel(bucket);
  // Two parts: a 5 MiB one and a short last one, so ranges cross a part boundary.
  const parts = [pseudoRandom(5 * MiB, 11), pseudoRandom(70_001, 12)];
  await multipartPut("adminA", bucket, MULTIPART_KEY, parts);
  multipartBody = new Uint8Array(parts[0]!.byteLength + parts[1]!.byteLength);
  multipartBody.set(parts[0]!);
  multipartBody.set(parts[1]!, parts[0]!.byteLength);
}, 120_000);

afterAll(async () => {
  await sentinel.check();
  await expectOnlyKeys(bucket, (k) => k === sentinel.key || k === MULTIPART_KEY);
});

// ---- Range ----------------------------------------------------------------------------------

/** A number as a client might write it: plain, zero-padded, huge, negative, or not a number. */
const rangeNumber = (size: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: size + 2 }).map(String) },
    { weight: 3, arbitrary: fc.constantFrom(0, 1, size - 2, size - 1, size, size + 1, 65535, 65536, 65537, 5 * MiB - 1, 5 * MiB).map(String) },
    { weight: 1, arbitrary: fc.constantFrom("", "00", "007", "99999999999999999999", "18446744073709551616", "9007199254740993", "1e3", "0x10", "-0", "-1", " 5", "+3", "１") },
  );

/** Range header values: canonical ones whose answer is known, and everything around them. */
const rangeHeader = (size: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.tuple(rangeNumber(size), rangeNumber(size)).map(([a, b]) => `bytes=${a}-${b}`) },
    { weight: 2, arbitrary: fc.tuple(rangeNumber(size), rangeNumber(size), rangeNumber(size), rangeNumber(size)).map(([a, b, c, d]) => `bytes=${a}-${b},${c}-${d}`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom("bytes", "Bytes", "BYTES", "bytes ", " bytes", "items", "byte", ""), fc.constantFrom("=", " = ", "==", ":", ""), rangeNumber(size), fc.constantFrom("-", " - ", "--", "", "–"), rangeNumber(size), fc.constantFrom("", " ", ",", ";", "\t", "/" + size))
        .map((p) => p.join("")),
    },
    { weight: 1, arbitrary: nastyString(40) },
  );

/** The exact answer S3 gives to a canonical single range ("bytes=a-b", "bytes=a-", "bytes=-n" in plain digits). */
function canonicalAnswer(header: string, size: number): { status: 206; first: number; last: number } | { status: 416 } | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return null;
  const a = m[1] === "" ? null : Number(m[1]);
  const b = m[2] === "" ? null : Number(m[2]);
  if (a === null) return b === 0 ? { status: 416 } : { status: 206, first: Math.max(0, size - b!), last: size - 1 };
  if (b !== null && b < a) return null; // invalid: S3 ignores it
  if (a >= size) return { status: 416 };
  return { status: 206, first: a, last: b === null ? size - 1 : Math.min(b, size - 1) };
}

async function checkRange(key: string, body: Uint8Array, range: string, method: "GET" | "HEAD", query: Record<string, string> = {}): Promise<void> {
  const r = await sendRaw(await signedRequest("adminA", { method, bucket, key, headers: { range }, query }));
  const c = await checkResponse(r, method, `Range: ${JSON.stringify(range)}`);
  const size = body.byteLength;
  const expected = canonicalAnswer(range, size);
  if (![200, 206, 416].includes(c.status) && method === "HEAD") {
    // A HEAD error has no body: ask again with GET to show the code.
    const again = await sendRaw(await signedRequest("adminA", { method: "GET", bucket, key, headers: { range }, query }));
    expect.fail(`HEAD Range ${JSON.stringify(range)} → ${c.status}; GET → ${again.status} ${await again.text()}`);
  }
  expect([200, 206, 416], `Range ${JSON.stringify(range)}`).toContain(c.status);
  if (expected) expect(c.status, `Range ${JSON.stringify(range)}`).toBe(expected.status);
  if (c.status === 200) {
    expect(c.headers.get("content-range")).toBeNull();
    if (method === "GET") expect(sameBytes(c.bytes, body), "200 must carry the whole object").toBe(true);
    else expect(c.headers.get("content-length")).toBe(String(size));
  } else if (c.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(c.headers.get("content-range") ?? "");
    expect(m, `Content-Range ${c.headers.get("content-range")}`).not.toBeNull();
    const [first, last, total] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(total).toBe(size);
    expect(first).toBeLessThanOrEqual(last);
    expect(last).toBeLessThan(size);
    if (expected?.status === 206) expect([first, last]).toEqual([expected.first, expected.last]);
    if (method === "GET") expect(sameBytes(c.bytes, body.subarray(first, last + 1)), `bytes of ${first}-${last}`).toBe(true);
    else expect(c.headers.get("content-length")).toBe(String(last - first + 1));
  } else if (method === "GET") {
    expect(c.code).toBe("InvalidRange");
  }
}

describe("Range headers", () => {
  it("single-part object: 200 whole, 206 the exact slice, or 416 InvalidRange", async () => {
    await fuzz("range/single-part", fc.tuple(rangeHeader(70_000), fc.constantFrom("GET" as const, "GET" as const, "HEAD" as const)), ([range, method]) => checkRange(sentinel.key, sentinel.body, range, method), 4);
    await sentinel.check();
  }, 600_000);

  it("multipart object (ranges across the part boundary, partNumber)", async () => {
    const size = multipartBody.byteLength;
    const boundary = fc.integer({ min: 5 * MiB - 70_000, max: 5 * MiB + 70_000 }).map(String);
    const nearBoundary = fc.tuple(boundary, boundary).map(([a, b]) => `bytes=${a}-${b}`);
    // One case in three asks for a part (the rest are HEADs with a Range).
    const partNumber = fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom("1", "2", "3", "0", "-1", "10001", "a", "", "1.0", "99999999999999999999") });
    await fuzz(
      "range/multipart",
      fc.tuple(fc.oneof(nearBoundary, rangeHeader(size)), partNumber),
      async ([range, part]) => {
        if (part === undefined) return checkRange(MULTIPART_KEY, multipartBody, range, "HEAD");
        // partNumber with or without a range: never a 5xx, always a proper answer.
        const r = await sendRaw(await signedRequest("adminA", { method: "GET", bucket, key: MULTIPART_KEY, headers: { range }, query: { partNumber: part } }));
        const c = await checkResponse(r, "GET", `partNumber=${part} Range: ${range}`);
        if (c.status === 200 || c.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(c.headers.get("content-range") ?? "");
          if (m) expect(sameBytes(c.bytes, multipartBody.subarray(Number(m[1]), Number(m[2]) + 1))).toBe(true);
          else expect(sameBytes(c.bytes, multipartBody)).toBe(true);
        }
      },
      2,
    );
    // A handful of full GETs with boundary ranges (each decrypts up to 5 MiB).
    await fuzz("range/multipart-get", nearBoundary, (range) => checkRange(MULTIPART_KEY, multipartBody, range, "GET"), 0.1);
  }, 600_000);
});

// ---- key names -----------------------------------------------------------------------------

/** S3 keys are up to 1024 bytes; R2 keys here carry "<bucket>/", so this endpoint's limit is that much lower. */
const maxKeyBytes = 1024 - bucket.length - 1;

const segment = fc.oneof(
  { weight: 4, arbitrary: nastyString(24) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom("%", "+", "?", "#", "&", "=", " ", "!", "'", "(", ")", "*", "~", ":", "@", "$", ",", ";", "[", "]", "{", "}", "|", "^", "`", "\\"), maxLength: 8 }) },
  { weight: 2, arbitrary: fc.constantFrom("😀", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "e\u0301\u0301\u0301", "\u0000", "\u0001\u001f", "\u007f", "\u200b", "\ufeff", "\u202eabc", "日本語", "", " ", "a b", "a+b", "100%", "%41", "%2F", "?x=1", "#frag") },
);

/** Keys: segments joined by "/" (so "//" and trailing "/" occur), or padded to sizes around the limit. */
const keyName: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 6, arbitrary: fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => s.join("/")) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(maxKeyBytes - 1, maxKeyBytes, maxKeyBytes + 1, 1023, 1024, 1025, 2048, 5000), fc.constantFrom("a", "é", "😀", "/", "%"))
        .map(([bytes, unit]) => {
          const u = utf8(unit).byteLength;
          return "k" + unit.repeat(Math.floor((bytes - 1) / u)) + "z".repeat((bytes - 1) % u);
        }),
    },
  )
  // Dot segments ("." and "..") never reach a server as such: URL parsing (here and in
  // clients) resolves them, so the key would change on the way. Everything else is kept.
  .map((k) => k.split("/").map((s) => (s === "." || s === ".." ? s + "_" : s)).join("/"))
  .filter((k) => k !== "" && k !== "/" && !k.startsWith(sentinel?.key ?? "\u0000sentinel") && k !== MULTIPART_KEY);

/** How the client encodes the key in the path: the SDK's strict encoding or looser ones real clients use. */
type KeyEncoding = "sdk" | "loose" | "lowercase";

function encodePath(key: string, how: KeyEncoding): string {
  const segments = key.split("/");
  const strict = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  if (how === "sdk") return segments.map(strict).join("/");
  if (how === "lowercase") return segments.map((s) => strict(s).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())).join("/");
  // encodeURI-like: sub-delims and ":@" raw ("+" included), the rest as the SDK does.
  return segments.map((s) => strict(s).replace(/%(21|24|26|27|28|29|2A|2B|2C|3A|3B|3D|40)/g, (m) => decodeURIComponent(m))).join("/");
}

describe("key names", () => {
  it("round-trip: PUT stores exactly the key (or refuses it with KeyTooLongError), GET/HEAD/LIST see it, DELETE removes it", async () => {
    await fuzz(
      "keys/round-trip",
      fc.tuple(keyName, fc.constantFrom<KeyEncoding>("sdk", "sdk", "loose", "lowercase")),
      async ([key, how]) => {
        const body = utf8(`body of ${key.slice(0, 64)}`);
        const path = `/${bucket}/${encodePath(key, how)}`;
        const put = await checkResponse(await sendRaw(await signedRequest("adminA", { method: "PUT", rawPath: path, body })), "PUT", `key ${JSON.stringify(key.slice(0, 80))} (${utf8(key).byteLength} bytes, ${how})`);
        const bytes = utf8(key).byteLength;
        if (bytes > maxKeyBytes) {
          expect(put.code, `key of ${bytes} bytes`).toBe("KeyTooLongError");
          // Every other operation on a key no object can have is refused alike.
          for (const method of ["GET", "DELETE"]) {
            const other = await checkResponse(await sendRaw(await signedRequest("adminA", { method, rawPath: path })), method, `${method} of a ${bytes}-byte key`);
            expect(other.code).toBe("KeyTooLongError");
          }
          return;
        }
        expect(put.status, `PUT key ${JSON.stringify(key)} (${how}) → ${put.code}`).toBe(200);
        written.add(key);
        try {
          const get = await checkResponse(await sendRaw(await signedRequest("adminA", { method: "GET", rawPath: path })), "GET");
          expect(get.status).toBe(200);
          expect(sameBytes(get.bytes, body)).toBe(true);
          // The SDK's encoding reaches the same object whatever encoding stored it.
          const head = await send("adminA", { method: "HEAD", bucket, key });
          expect(head.status, `HEAD (SDK encoding) of ${JSON.stringify(key)}`).toBe(200);
          // Local R2 (Miniflare's SQLite) matches no prefix that contains NUL; list up to it.
          const prefix = key.split("\u0000")[0]!;
          const list = await send("adminA", { method: "GET", bucket, query: { "list-type": "2", prefix, "max-keys": "1000" } });
          const text = await list.text();
          expect(list.status, text).toBe(200);
          expect(xmlValues(text, "Key"), `listing of ${JSON.stringify(key)}`).toContain(key);
        } finally {
          const del = await checkResponse(await send("adminA", { method: "DELETE", bucket, key }), "DELETE");
          expect(del.status).toBe(204);
          written.delete(key);
        }
        const gone = await checkResponse(await send("adminA", { method: "GET", bucket, key }), "GET");
        expect(gone.code).toBe("NoSuchKey");
      },
      0.75,
    );
    await sentinel.check();
    await expectOnlyKeys(bucket, (k) => k === sentinel.key || k === MULTIPART_KEY);
  }, 900_000);

  it("raw paths (invalid UTF-8, stray %, odd bytes) are answered with S3 errors, never stored by GET/HEAD/DELETE mistakes", async () => {
    const rawSegment = fc.oneof(
      fc.uint8Array({ maxLength: 12 }).map((b) => Array.from(b, (x) => "%" + x.toString(16).padStart(2, "0").toUpperCase()).join("")),
      fc.string({ unit: fc.constantFrom("%", "%%", "%G", "%0", "%C3", "%C3%28", "%ED%A0%80", "%F4%90%80%80", "%C0%AF", "%00", "a", "+", ";", "=", "~", "%2F", "%5C"), maxLength: 8 }),
      fc.string({ maxLength: 8 }).map((s) => encodeURI(s)),
    );
    await fuzz(
      "keys/raw-path",
      fc.tuple(fc.array(rawSegment, { minLength: 1, maxLength: 4 }), fc.constantFrom("GET", "HEAD", "DELETE"), fc.boolean()),
      async ([segments, method, inBucket]) => {
        const path = inBucket ? `/${bucket}/q${segments.join("/")}` : `/${segments.join("/")}`;
        await checkResponse(await sendRaw(await signedRequest("adminA", { method, rawPath: path })), method, `path ${path}`);
      },
      3,
    );
    await sentinel.check();
  }, 600_000);

  it("bucket names: CreateBucket succeeds exactly for names S3 allows", async () => {
    const validName = (n: string) =>
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(n) &&
      !n.includes("..") &&
      !n.includes(".-") &&
      !n.includes("-.") &&
      !/^\d+\.\d+\.\d+\.\d+$/.test(n) &&
      !n.startsWith("xn--") &&
      !n.startsWith("sthree-") &&
      !n.endsWith("-s3alias") &&
      !n.endsWith("--ol-s3");
    const name = fc.oneof(
      fc.string({ unit: fc.constantFrom(..."abc019.-_AZ"), minLength: 1, maxLength: 70 }),
      fc.constantFrom("_mpu", "_internal", "xn--abc", "sthree-x", "a-s3alias", "a--ol-s3", "192.168.1.1", "a..b", "a.-b", "ab", "a".repeat(63), "a".repeat(64), "fz-ok-name"),
      nastyString(20),
    );
    await fuzz(
      "keys/bucket-names",
      name.map((n) => `${n}${validName(n) ? "-" + Math.random().toString(36).slice(2, 6) : ""}`.slice(0, 80)),
      async (n) => {
        const path = "/" + encodeURIComponent(n);
        if (path === "/" || n.includes("/")) return;
        const r = await checkResponse(await sendRaw(await signedRequest("adminA", { method: "PUT", rawPath: path })), "PUT", `bucket ${JSON.stringify(n)}`);
        if (validName(n)) {
          expect(r.status, `CreateBucket ${n}`).toBe(200);
          const del = await send("adminA", { method: "DELETE", bucket: n });
          expect(del.status).toBe(204);
        } else {
          expect(r.status, `CreateBucket ${JSON.stringify(n)} must be refused`).not.toBe(200);
        }
      },
      1,
    );
  }, 600_000);
});

// ---- metadata ------------------------------------------------------------------------------

const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'*+^`|~";

/** x-amz-meta-* headers whose total (names without the prefix + values, in bytes) lands around 2 KB. */
const metadata = fc
  .tuple(fc.integer({ min: 1, max: 24 }), fc.oneof(fc.integer({ min: 1990, max: 2110 }), fc.integer({ min: 0, max: 6000 })), fc.boolean(), fc.infiniteStream(fc.nat()))
  .map(([count, target, ascii, rnd]) => {
    const headers: Record<string, string> = {};
    let left = target;
    for (let i = 0; i < count && left > 0; i++) {
      const r = rnd.next().value;
      const name = `m${i}` + Array.from({ length: r % 12 }, (_, j) => TOKEN_CHARS[(r >> j) % TOKEN_CHARS.length]).join("");
      const share = i === count - 1 ? left - name.length : Math.floor((left - name.length) / (count - i));
      const value = share <= 0 ? "" : "v".repeat(share);
      headers[`x-amz-meta-${name}`] = value;
      left -= name.length + value.length;
    }
    if (!ascii) {
      // Non-ASCII values: no exact size oracle (clients differ in how they send them), only the 5xx/XML property.
      const first = Object.keys(headers)[0];
      if (first) headers[first] = "é😀\u0301" + headers[first]!.slice(0, 40);
    }
    const size = Object.entries(headers).reduce((n, [k, v]) => n + k.length - "x-amz-meta-".length + utf8(v).byteLength, 0);
    return { headers, size, ascii };
  });

describe("user metadata", () => {
  it("PUT with metadata around the 2 KB limit: stored and returned exactly, or MetadataTooLarge", async () => {
    await fuzz(
      "metadata/size",
      metadata,
      async ({ headers, size, ascii }) => {
        const key = "meta-target";
        const put = await checkResponse(await sendRaw(await signedRequest("adminA", { method: "PUT", bucket, key, body: "m", headers })), "PUT", `metadata of ${size} bytes`);
        if (ascii) {
          if (size > 2048) expect(put.code, `${size} bytes of metadata`).toBe("MetadataTooLarge");
          else expect(put.status, `${size} bytes of metadata → ${put.code}`).toBe(200);
        }
        if (put.status !== 200) return;
        try {
          const head = await send("adminA", { method: "HEAD", bucket, key });
          expect(head.status).toBe(200);
          if (ascii) for (const [name, value] of Object.entries(headers)) expect(head.headers.get(name), name).toBe(value);
        } finally {
          expect((await send("adminA", { method: "DELETE", bucket, key })).status).toBe(204);
        }
      },
      1,
    );
    await sentinel.check();
  }, 600_000);
});
