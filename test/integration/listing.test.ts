import { beforeAll, describe, expect, it } from "vitest";
import { createBucket, expectError, seedIdentities, send, TENANT_A, uniqueBucket, xmlBlocks, xmlValue, xmlValues } from "../support/s3-harness";

const bucket = uniqueBucket("list");

/**
 * 64 keys: top-level files, "dir-N/" folders with files (common prefixes under "/"),
 * nested folders, and keys that need URL encoding.
 */
const KEYS = [
  ...Array.from({ length: 12 }, (_, i) => `file-${String(i).padStart(2, "0")}.txt`),
  ...Array.from({ length: 8 }, (_, d) => Array.from({ length: 5 }, (_, i) => `dir-${d}/obj-${i}`)).flat(),
  "dir-3/nested/deep-1",
  "dir-3/nested/deep-2",
  "photos/2024/a b.jpg",
  "photos/2024/c+d.jpg",
  "photos/2025/ü.jpg",
  "photos/index",
  "space key",
  "z-last",
  "ctrl\u0001key",
  "amp&lt",
].sort();

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  // Sequential small batches keep the local R2 happy and the order irrelevant.
  for (let i = 0; i < KEYS.length; i += 8) {
    await Promise.all(
      KEYS.slice(i, i + 8).map(async (key) => {
        const r = await send("adminA", { method: "PUT", bucket, key, body: `#${key}` });
        expect(r.status, key).toBe(200);
      }),
    );
  }
});

async function list(query: Record<string, string>, who: "adminA" | "memberA" | "adminB" = "adminA") {
  const r = await send(who, { method: "GET", bucket, query });
  const text = await r.text();
  expect(r.status, text).toBe(200);
  return text;
}

const bytesOf = (key: string) => new TextEncoder().encode(`#${key}`).byteLength;

/** Expected top-level view with delimiter "/" (keys and common prefixes, in order). */
function delimited(prefix: string, delimiter: string): { keys: string[]; prefixes: string[] } {
  const keys: string[] = [];
  const prefixes = new Set<string>();
  for (const key of KEYS) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const at = rest.indexOf(delimiter);
    if (at >= 0) prefixes.add(prefix + rest.slice(0, at + delimiter.length));
    else keys.push(key);
  }
  return { keys, prefixes: [...prefixes].sort() };
}

describe("ListObjectsV2", () => {
  it("lists every key with size, ETag, storage class and the right counts", async () => {
    const text = await list({ "list-type": "2" });
    expect(xmlValue(text, "Name")).toBe(bucket);
    expect(xmlValue(text, "KeyCount")).toBe(String(KEYS.length));
    expect(xmlValue(text, "MaxKeys")).toBe("1000");
    expect(xmlValue(text, "IsTruncated")).toBe("false");
    expect(xmlValues(text, "Key")).toEqual(KEYS);
    const first = xmlBlocks(text, "Contents")[0]!;
    expect(xmlValue(first, "Size")).toBe(String(bytesOf(KEYS[0]!)));
    expect(xmlValue(first, "ETag")).toMatch(/^"[0-9a-f]{32}(-1)?"$/);
    expect(xmlValue(first, "StorageClass")).toBe("STANDARD");
    expect(xmlValue(first, "LastModified")).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    // No owner unless fetch-owner=true.
    expect(first).not.toContain("<Owner>");
  });

  it("the listed ETag equals the object's ETag", async () => {
    const text = await list({ "list-type": "2", prefix: "z-last" });
    const head = await send("adminA", { method: "HEAD", bucket, key: "z-last" });
    expect(xmlValue(text, "ETag")).toBe(head.headers.get("etag"));
  });

  it("prefix narrows the listing", async () => {
    const text = await list({ "list-type": "2", prefix: "dir-3/" });
    expect(xmlValues(text, "Key")).toEqual(KEYS.filter((k) => k.startsWith("dir-3/")));
    expect(xmlValue(text, "Prefix")).toBe("dir-3/");
  });

  it("delimiter rolls keys up into CommonPrefixes", async () => {
    const text = await list({ "list-type": "2", delimiter: "/" });
    const expected = delimited("", "/");
    expect(xmlValues(text, "Key")).toEqual(expected.keys);
    expect(xmlBlocks(text, "CommonPrefixes").map((b) => xmlValue(b, "Prefix"))).toEqual(expected.prefixes);
    expect(xmlValue(text, "KeyCount")).toBe(String(expected.keys.length + expected.prefixes.length));
    expect(xmlValue(text, "Delimiter")).toBe("/");
  });

  it("prefix and delimiter together", async () => {
    const text = await list({ "list-type": "2", prefix: "photos/", delimiter: "/" });
    expect(xmlValues(text, "Key")).toEqual(["photos/index"]);
    expect(xmlBlocks(text, "CommonPrefixes").map((b) => xmlValue(b, "Prefix"))).toEqual(["photos/2024/", "photos/2025/"]);
  });

  it("a multi-character delimiter works", async () => {
    const text = await list({ "list-type": "2", delimiter: "obj-" });
    const expected = delimited("", "obj-");
    expect(xmlValues(text, "Key")).toEqual(expected.keys);
    expect(xmlBlocks(text, "CommonPrefixes").map((b) => xmlValue(b, "Prefix"))).toEqual(expected.prefixes);
  });

  it("max-keys truncates and continuation tokens page through every key exactly once", async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const text = await list({ "list-type": "2", "max-keys": "7", ...(token ? { "continuation-token": token } : {}) });
      const keys = xmlValues(text, "Key");
      expect(keys.length).toBeLessThanOrEqual(7);
      expect(xmlValue(text, "KeyCount")).toBe(String(keys.length));
      if (token) expect(xmlValue(text, "ContinuationToken")).toBe(token);
      seen.push(...keys);
      const truncated = xmlValue(text, "IsTruncated") === "true";
      token = xmlValue(text, "NextContinuationToken") ?? undefined;
      expect(Boolean(token)).toBe(truncated);
      pages++;
      expect(pages).toBeLessThan(50);
    } while (token);
    expect(seen).toEqual(KEYS);
  });

  it("pages with a delimiter: every key and common prefix appears exactly once", async () => {
    const expected = delimited("", "/");
    const keys: string[] = [];
    const prefixes: string[] = [];
    let token: string | undefined;
    for (let pages = 0; pages < 50; pages++) {
      const text = await list({ "list-type": "2", delimiter: "/", "max-keys": "3", ...(token ? { "continuation-token": token } : {}) });
      const k = xmlValues(text, "Key");
      const p = xmlBlocks(text, "CommonPrefixes").map((b) => xmlValue(b, "Prefix")!);
      expect(k.length + p.length).toBeLessThanOrEqual(3);
      keys.push(...k);
      prefixes.push(...p);
      token = xmlValue(text, "NextContinuationToken") ?? undefined;
      if (!token) break;
    }
    expect(token).toBeUndefined();
    expect(keys).toEqual(expected.keys);
    expect(prefixes).toEqual(expected.prefixes);
  });

  it("start-after skips keys up to and including it", async () => {
    const text = await list({ "list-type": "2", "start-after": "dir-7/obj-4" });
    expect(xmlValues(text, "Key")).toEqual(KEYS.filter((k) => k > "dir-7/obj-4"));
    expect(xmlValue(text, "StartAfter")).toBe("dir-7/obj-4");
  });

  it("fetch-owner=true adds the owner", async () => {
    const text = await list({ "list-type": "2", "fetch-owner": "true", "max-keys": "1" });
    const owner = xmlBlocks(text, "Owner")[0]!;
    expect(xmlValue(owner, "ID")).toBe(TENANT_A);
  });

  it("encoding-type=url percent-encodes keys, prefixes and delimiters (\"/\" kept, a space as \"+\", as S3 answers)", async () => {
    const text = await list({ "list-type": "2", "encoding-type": "url", prefix: "photos/" });
    expect(xmlValue(text, "EncodingType")).toBe("url");
    const keys = xmlValues(text, "Key");
    expect(keys).toEqual(["photos/2024/a+b.jpg", "photos/2024/c%2Bd.jpg", "photos/2025/%C3%BC.jpg", "photos/index"]);
    // What botocore's unquote_plus does: "+" is a space, "%2B" a literal plus.
    expect(keys.map((k) => decodeURIComponent(k.replace(/\+/g, " ")))).toEqual(KEYS.filter((k) => k.startsWith("photos/")));
    const ctrl = await list({ "list-type": "2", "encoding-type": "url", prefix: "ctrl" });
    expect(xmlValues(ctrl, "Key")).toEqual(["ctrl%01key"]);
  });

  it("without encoding-type, control characters and XML specials are escaped in the XML", async () => {
    const text = await list({ "list-type": "2", prefix: "ctrl" });
    expect(text).toContain("<Key>ctrl&#x1;key</Key>");
    expect(xmlValues(await list({ "list-type": "2", prefix: "amp" }), "Key")).toEqual(["amp&lt"]);
  });

  it("an empty continuation-token is the same as none: the first page, no ContinuationToken echoed", async () => {
    const text = await list({ "list-type": "2", "continuation-token": "", "max-keys": "2" });
    expect(xmlValues(text, "Key")).toEqual(KEYS.slice(0, 2));
    expect(text).not.toContain("<ContinuationToken>");
    expect(xmlValue(text, "IsTruncated")).toBe("true");
  });

  it("max-keys=0 answers an empty, untruncated page", async () => {
    const text = await list({ "list-type": "2", "max-keys": "0" });
    expect(xmlValues(text, "Key")).toEqual([]);
    expect(xmlValue(text, "KeyCount")).toBe("0");
  });

  it("refuses bad max-keys, encoding-type and continuation tokens with InvalidArgument", async () => {
    await expectError(send("adminA", { method: "GET", bucket, query: { "list-type": "2", "max-keys": "-1" } }), 400, "InvalidArgument");
    await expectError(send("adminA", { method: "GET", bucket, query: { "list-type": "2", "max-keys": "ten" } }), 400, "InvalidArgument");
    await expectError(send("adminA", { method: "GET", bucket, query: { "list-type": "2", "encoding-type": "base64" } }), 400, "InvalidArgument");
    await expectError(send("adminA", { method: "GET", bucket, query: { "list-type": "2", "continuation-token": "garbage!" } }), 400, "InvalidArgument");
  });

  it("a missing bucket is NoSuchBucket; another tenant is AccessDenied", async () => {
    await expectError(send("adminA", { method: "GET", bucket: uniqueBucket("nope"), query: { "list-type": "2" } }), 404, "NoSuchBucket");
    await expectError(send("adminB", { method: "GET", bucket, query: { "list-type": "2" } }), 403, "AccessDenied");
    // Members of the owning tenant list freely.
    expect(xmlValues(await list({ "list-type": "2", prefix: "z" }, "memberA"), "Key")).toEqual(["z-last"]);
  });
});

describe("ListObjects (V1)", () => {
  it("lists with Marker and owner, untruncated", async () => {
    const text = await list({});
    expect(xmlValues(text, "Key")).toEqual(KEYS);
    expect(xmlValue(text, "Marker")).toBe("");
    expect(xmlValue(text, "IsTruncated")).toBe("false");
    expect(xmlValue(xmlBlocks(text, "Owner")[0]!, "ID")).toBe(TENANT_A);
  });

  it("pages with marker = last key when there is no delimiter (no NextMarker), every key once", async () => {
    const seen: string[] = [];
    let marker = "";
    for (let pages = 0; pages < 50; pages++) {
      const text = await list({ "max-keys": "9", ...(marker ? { marker } : {}) });
      expect(xmlValue(text, "Marker")).toBe(marker);
      const keys = xmlValues(text, "Key");
      seen.push(...keys);
      expect(xmlValue(text, "NextMarker")).toBeNull();
      if (xmlValue(text, "IsTruncated") !== "true") break;
      marker = keys.at(-1)!;
    }
    expect(seen).toEqual(KEYS);
  });

  it("pages with NextMarker over common prefixes: every key and prefix exactly once", async () => {
    const expected = delimited("", "/");
    const keys: string[] = [];
    const prefixes: string[] = [];
    let marker = "";
    let done = false;
    for (let pages = 0; pages < 60 && !done; pages++) {
      const text = await list({ delimiter: "/", "max-keys": "2", ...(marker ? { marker } : {}) });
      keys.push(...xmlValues(text, "Key"));
      prefixes.push(...xmlBlocks(text, "CommonPrefixes").map((b) => xmlValue(b, "Prefix")!));
      if (xmlValue(text, "IsTruncated") === "true") {
        const next = xmlValue(text, "NextMarker");
        expect(next, "NextMarker is required when truncated with a delimiter").not.toBeNull();
        marker = next!;
      } else done = true;
    }
    expect(done).toBe(true);
    expect(keys).toEqual(expected.keys);
    expect(prefixes).toEqual(expected.prefixes);
  });

  it("pages with a prefix and delimiter inside a folder", async () => {
    const expected = delimited("dir-3/", "/");
    const keys: string[] = [];
    const prefixes: string[] = [];
    let marker = "";
    for (let pages = 0; pages < 20; pages++) {
      const text = await list({ prefix: "dir-3/", delimiter: "/", "max-keys": "1", ...(marker ? { marker } : {}) });
      keys.push(...xmlValues(text, "Key"));
      prefixes.push(...xmlBlocks(text, "CommonPrefixes").map((b) => xmlValue(b, "Prefix")!));
      if (xmlValue(text, "IsTruncated") !== "true") break;
      marker = xmlValue(text, "NextMarker")!;
    }
    expect(keys).toEqual(expected.keys);
    expect(prefixes).toEqual(["dir-3/nested/"]);
  });

  it("encoding-type=url applies to Marker and NextMarker too", async () => {
    const text = await list({ "encoding-type": "url", prefix: "photos/2024/", delimiter: "/", "max-keys": "1", marker: "photos/2024/" });
    expect(xmlValue(text, "Marker")).toBe("photos/2024/");
    expect(xmlValues(text, "Key")).toEqual(["photos/2024/a+b.jpg"]);
    expect(xmlValue(text, "IsTruncated")).toBe("true");
    expect(xmlValue(text, "NextMarker")).toBe("photos/2024/a+b.jpg");
    const next = await list({ "encoding-type": "url", prefix: "photos/2024/", delimiter: "/", marker: "photos/2024/a b.jpg" });
    expect(xmlValue(next, "Marker")).toBe("photos/2024/a+b.jpg");
    expect(xmlValues(next, "Key")).toEqual(["photos/2024/c%2Bd.jpg"]);
  });

  it("encoding-type=url encodes Delimiter, Key and CommonPrefixes' Prefix but not the top-level Prefix, as AWS V1 does", async () => {
    const text = await list({ "encoding-type": "url", prefix: "photos/2025/ü", delimiter: "/" });
    expect(text).toContain("<Prefix>photos/2025/ü</Prefix>");
    expect(xmlValues(text, "Key")).toEqual(["photos/2025/%C3%BC.jpg"]);
    const spaced = await list({ "encoding-type": "url", prefix: "photos/2024/a", delimiter: " " });
    expect(xmlValue(spaced, "Delimiter")).toBe("+");
    expect(xmlBlocks(spaced, "CommonPrefixes").map((b) => xmlValue(b, "Prefix"))).toEqual(["photos/2024/a+"]);
    // The top-level Prefix is the first <Prefix>, outside any CommonPrefixes block.
    expect(xmlValue(spaced, "Prefix")).toBe("photos/2024/a");
  });
});

describe("ListObjectVersions", () => {
  it("lists each object as its only, null version", async () => {
    const text = await list({ versions: "", prefix: "dir-0/" });
    const versions = xmlBlocks(text, "Version");
    expect(versions.map((v) => xmlValue(v, "Key"))).toEqual(KEYS.filter((k) => k.startsWith("dir-0/")));
    for (const v of versions) {
      expect(xmlValue(v, "VersionId")).toBe("null");
      expect(xmlValue(v, "IsLatest")).toBe("true");
      expect(xmlValue(v, "ETag")).toMatch(/^"[0-9a-f]{32}(-1)?"$/);
      expect(xmlValue(xmlBlocks(v, "Owner")[0]!, "ID")).toBe(TENANT_A);
    }
    expect(text).toContain("<ListVersionsResult");
    expect(text).not.toContain("<DeleteMarker>");
  });

  it("pages with key-marker / NextKeyMarker, every key once", async () => {
    const seen: string[] = [];
    let marker = "";
    for (let pages = 0; pages < 50; pages++) {
      const text = await list({ versions: "", "max-keys": "10", ...(marker ? { "key-marker": marker } : {}) });
      seen.push(...xmlBlocks(text, "Version").map((v) => xmlValue(v, "Key")!));
      if (xmlValue(text, "IsTruncated") !== "true") break;
      marker = xmlValue(text, "NextKeyMarker")!;
      expect(xmlValue(text, "NextVersionIdMarker")).toBe("null");
    }
    expect(seen).toEqual(KEYS);
  });

  it("with a delimiter lists common prefixes", async () => {
    const text = await list({ versions: "", delimiter: "/" });
    expect(xmlBlocks(text, "CommonPrefixes").map((b) => xmlValue(b, "Prefix"))).toEqual(delimited("", "/").prefixes);
  });
});
