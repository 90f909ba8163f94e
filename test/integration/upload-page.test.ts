import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import type { Env } from "../../src/env";
import { toHex } from "../../src/util/bytes";
import { pageConfig, partSizeFor, refusal } from "../../src/upload-page/config";
import { issueReceipt, RECEIPT_TTL_SECONDS } from "../../src/upload-page/receipt";
import { multipartBody, type Part } from "../support/post-form";
import { seedIdentities } from "../support/worker-client";

const ORIGIN = "http://gw.test";
const app = createApp();
// LOCAL_DEV as under `npm run dev`: the page runs without a token.
const pageEnv: Env = { ...env, LOCAL_DEV: "true", UPLOAD_PAGE_ACCESS_KEY_ID: "LOCALADMINA", UPLOAD_PAGE_BUCKET: "page-bucket", UPLOAD_PAGE_MAX_BYTES: "1000", UPLOAD_PAGE_TOKEN: undefined };
/** A deployed worker: no LOCAL_DEV, the token set. */
const guarded: Env = { ...pageEnv, LOCAL_DEV: undefined, UPLOAD_PAGE_TOKEN: "page-token" };
const bearer = { authorization: "Bearer page-token" };

function send(request: Request, e: Env = pageEnv): Promise<Response> {
  return Promise.resolve(app.fetch(request, e));
}

async function grant(e: Env = pageEnv, headers: Record<string, string> = {}): Promise<Response> {
  return send(new Request(`${ORIGIN}/_upload/form`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ filename: "notes.txt", size: 11 }) }), e);
}

interface Grant {
  url: string;
  fields: Record<string, string>;
  receipt: string;
}

/** Grants a form and stores `content` through it; the stored key and the grant's receipt. */
async function uploadThroughPage(content: string, e: Env = pageEnv, headers: Record<string, string> = {}): Promise<{ key: string; receipt: string }> {
  const r = await grant(e, headers);
  expect(r.status).toBe(200);
  const { url, fields, receipt } = (await r.json()) as Grant;
  const parts: Part[] = [...Object.entries(fields).map(([name, value]) => ({ name, value })), { name: "Content-Type", value: "text/plain" }, { name: "file", file: content, filename: "notes.txt" }];
  const { body, contentType } = multipartBody(parts);
  const posted = await send(new Request(url, { method: "POST", headers: { "content-type": contentType }, body }));
  const xml = await posted.text();
  expect(posted.status, xml).toBe(201);
  return { key: /<Key>([^<]+)<\/Key>/.exec(xml)![1]!, receipt };
}

function describeObject(key: string, receipt: string | null, e: Env = pageEnv, headers: Record<string, string> = {}): Promise<Response> {
  const query = `key=${encodeURIComponent(key)}${receipt === null ? "" : `&receipt=${encodeURIComponent(receipt)}`}`;
  return send(new Request(`${ORIGIN}/_upload/object?${query}`, { headers }), e);
}

beforeAll(async () => {
  await seedIdentities();
});

describe("upload page", () => {
  it("is off unless UPLOAD_PAGE_ACCESS_KEY_ID is set", async () => {
    const off: Env = { ...env, UPLOAD_PAGE_ACCESS_KEY_ID: undefined };
    expect((await send(new Request(`${ORIGIN}/_upload`), off)).status).toBe(404);
    expect((await grant(off)).status).toBe(404);
  });

  it("serves the page and its script with a strict CSP", async () => {
    const page = await send(new Request(`${ORIGIN}/_upload`));
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('id="file"');
    expect(html).toContain("page-bucket");
    const script = await send(new Request(`${ORIGIN}/_upload/app.js`));
    expect(script.headers.get("content-type")).toContain("javascript");
    expect(await script.text()).toContain("XMLHttpRequest");
  });

  it("hands out an SSE-KMS presigned POST, stores through it, and describes the object with a working download link", async () => {
    const r = await grant();
    expect(r.status).toBe(200);
    const { url, fields, receipt } = (await r.json()) as Grant;
    expect(url).toBe(`${ORIGIN}/page-bucket`);
    expect(fields["x-amz-server-side-encryption"]).toBe("aws:kms");
    expect(fields["key"]).toMatch(/^page-uploads\/\d{4}-\d{2}-\d{2}\/[0-9a-f]{12}\/\$\{filename\}$/);
    expect(JSON.stringify(fields)).not.toContain("local-admin-a-secret");
    const policy = JSON.parse(atob(fields["Policy"]!)) as { conditions: unknown[] };
    expect(policy.conditions).toContainEqual(["content-length-range", 0, 1000]);

    const parts: Part[] = [...Object.entries(fields).map(([name, value]) => ({ name, value })), { name: "Content-Type", value: "text/plain" }, { name: "file", file: "hello page!", filename: "notes.txt" }];
    const { body, contentType } = multipartBody(parts);
    const posted = await send(new Request(url, { method: "POST", headers: { "content-type": contentType }, body }));
    const xml = await posted.text();
    expect(posted.status, xml).toBe(201);
    const key = /<Key>([^<]+)<\/Key>/.exec(xml)![1]!;
    expect(key).toMatch(/^page-uploads\/.+\/notes\.txt$/);

    const described = await describeObject(key, receipt);
    const info = (await described.json()) as { size: number; keyArn: string; encryption: string; download: string; contentType: string };
    expect(info.size).toBe(11);
    expect(info.encryption).toBe("aws:kms");
    expect(info.keyArn).toMatch(/^arn:aws:kms:us-east-1:000000000000000000000000000000aa:key\//);
    expect(info.contentType).toBe("text/plain");
    const download = await send(new Request(info.download));
    expect(download.status).toBe(200);
    expect(download.headers.get("content-disposition")).toContain("notes.txt");
    expect(await download.text()).toBe("hello page!");

    // The grant's content-length-range holds.
    const tooBig = multipartBody([...parts.slice(0, -1), { name: "file", file: new Uint8Array(1001), filename: "big.bin" }]);
    const refused = await send(new Request(url, { method: "POST", headers: { "content-type": tooBig.contentType }, body: tooBig.body }));
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("EntityTooLarge");
  });

  it("requires the token when one is configured: none or a wrong one is 401, the right one works end to end", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "page-token" }] as Array<Record<string, string>>) {
      const r = await grant(guarded, headers);
      expect(r.status).toBe(401);
      expect(await r.json()).toMatchObject({ code: "InvalidToken" });
    }
    const { key, receipt } = await uploadThroughPage("guarded", guarded, bearer);
    expect((await describeObject(key, receipt, guarded)).status).toBe(401);
    const described = await describeObject(key, receipt, guarded, bearer);
    expect(described.status).toBe(200);
    const download = await send(new Request(((await described.json()) as { download: string }).download));
    expect(await download.text()).toBe("guarded");
  });

  it("refuses to serve without a token outside local dev, whatever the Host says", async () => {
    const open: Env = { ...pageEnv, LOCAL_DEV: undefined };
    const openHost = (path: string, init: RequestInit = {}) => send(new Request(`http://127.0.0.1:8787/_upload${path}`, { ...init, headers: { host: "localhost", ...(init.headers as Record<string, string>) } }), open);
    const page = await openHost("");
    expect(page.status).toBe(503);
    expect(await page.text()).toContain("UPLOAD_PAGE_TOKEN is not set");
    const form = await openHost("/form", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ filename: "x", size: 1 }) });
    expect(form.status).toBe(503);
    const error = (await form.json()) as { error: string; code: string };
    expect(error.code).toBe("UploadPageTokenRequired");
    expect(error.error).toContain("Set UPLOAD_PAGE_TOKEN");
    expect((await openHost("/object?key=page-uploads/x")).status).toBe(503);
    // LOCAL_DEV must be exactly "true"; anything else is not local dev.
    expect((await grant({ ...open, LOCAL_DEV: "1" })).status).toBe(503);
    expect((await grant({ ...open, LOCAL_DEV: "false" })).status).toBe(503);
  });

  it("refuses JSON bodies above 16 KiB without reading them whole (413), and malformed JSON (400)", async () => {
    const big = JSON.stringify({ filename: "x".repeat(17 * 1024), size: 1 });
    const declared = await send(new Request(`${ORIGIN}/_upload/form`, { method: "POST", headers: { "content-type": "application/json" }, body: big }));
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ code: "RequestTooLarge" });
    // No Content-Length: a stream that would never end is cut off at the limit.
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 4096;
        controller.enqueue(new Uint8Array(4096).fill(0x20));
      },
    });
    const streamed = await send(new Request(`${ORIGIN}/_upload/form`, { method: "POST", headers: { "content-type": "application/json" }, body: endless, duplex: "half" } as RequestInit));
    expect(streamed.status).toBe(413);
    expect(pulled).toBeLessThan(64 * 1024);
    const malformed = await send(new Request(`${ORIGIN}/_upload/form`, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" }));
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ code: "MalformedJSON" });
  });

  it("links only to what the receipt's own grant stored: no, forged, expired or another grant's receipt is 403", async () => {
    const mine = await uploadThroughPage("mine");
    const theirs = await uploadThroughPage("theirs");
    expect((await describeObject(mine.key, mine.receipt)).status).toBe(200);

    const refused = async (key: string, receipt: string | null, code: string) => {
      const r = await describeObject(key, receipt);
      expect(r.status).toBe(403);
      const body = (await r.json()) as { code: string; download?: string };
      expect(body.code).toBe(code);
      expect(body.download).toBeUndefined();
    };
    await refused(theirs.key, null, "InvalidReceipt");
    await refused(theirs.key, mine.receipt, "ReceiptMismatch");
    await refused("elsewhere/x", mine.receipt, "ReceiptMismatch");
    // Forged: claims rewritten to cover the other key's prefix, MAC kept.
    const [payload, mac] = mine.receipt.split(".") as [string, string];
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { p: string };
    claims.p = theirs.key.slice(0, theirs.key.lastIndexOf("/") + 1);
    const forged = `${btoa(JSON.stringify(claims)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}.${mac}`;
    await refused(theirs.key, forged, "InvalidReceipt");
    await refused(mine.key, `${payload}.${mac.slice(0, -2)}AA`, "InvalidReceipt");
    await refused(mine.key, "garbage", "InvalidReceipt");
    // Expired: correctly signed, issued more than a day ago.
    const prefix = mine.key.slice(0, mine.key.lastIndexOf("/") + 1);
    const expired = await issueReceipt(pageEnv, "LOCALADMINA", { b: "page-bucket", p: prefix }, Date.now() - (RECEIPT_TTL_SECONDS + 60) * 1000);
    await refused(mine.key, expired, "InvalidReceipt");
    const fresh = await issueReceipt(pageEnv, "LOCALADMINA", { b: "page-bucket", p: prefix });
    expect((await describeObject(mine.key, fresh)).status).toBe(200);
    // A receipt for another bucket does not cover this one.
    await refused(mine.key, await issueReceipt(pageEnv, "LOCALADMINA", { b: "other-bucket", p: prefix }), "InvalidReceipt");
  });
});

describe("upload page: multipart uploads (files above one part)", () => {
  // Parts of 5 MiB (S3's minimum): MAX_REQUEST_BODY_BYTES leaves no room for more.
  const mpEnv = { ...pageEnv, UPLOAD_PAGE_MAX_BYTES: undefined, MAX_REQUEST_BODY_BYTES: "6000000" } as Env;
  const PART = 5 * 1024 * 1024;

  async function api(path: string, body: unknown, e: Env = mpEnv, headers: Record<string, string> = {}): Promise<Response> {
    return send(new Request(`${ORIGIN}/_upload/multipart/${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }), e);
  }

  interface Created {
    key: string;
    uploadId: string;
    partSize: number;
    partCount: number;
    receipt: string;
  }

  async function create(size: number, filename = "big video.mp4"): Promise<Created> {
    const r = await api("create", { filename, size, contentType: "video/mp4" });
    expect(r.status, await r.clone().text()).toBe(200);
    return (await r.json()) as Created;
  }

  async function putPart(created: Created, partNumber: number, data: Uint8Array): Promise<Response> {
    const signed = await api("sign", { receipt: created.receipt, partNumber });
    expect(signed.status).toBe(200);
    const { url, length } = (await signed.json()) as { url: string; length: number };
    expect(length).toBe(data.length);
    return send(new Request(url, { method: "PUT", headers: { "content-length": String(data.length) }, body: data }));
  }

  const content = new Uint8Array(2 * PART + 1234);
  for (let i = 0; i < content.length; i += 65536) crypto.getRandomValues(content.subarray(i, Math.min(i + 65536, content.length)));
  const sha256 = async (data: Uint8Array) => toHex(await crypto.subtle.digest("SHA-256", data));
  const partData = (n: number) => content.subarray((n - 1) * PART, Math.min(n * PART, content.length));

  it("creates an SSE-KMS upload, signs each part for its exact length, lists, completes and links to the object", async () => {
    const created = await create(content.length);
    expect(created.key).toMatch(/^page-uploads\/\d{4}-\d{2}-\d{2}\/[0-9a-f]{12}\/big video\.mp4$/);
    expect(created.partSize).toBe(PART);
    expect(created.partCount).toBe(3);

    expect((await putPart(created, 2, partData(2))).status).toBe(200);
    const listed = (await (await api("parts", { receipt: created.receipt })).json()) as { parts: Array<{ partNumber: number; size: number }> };
    expect(listed.parts.map((p) => [p.partNumber, p.size])).toEqual([[2, PART]]);
    // Completing with parts missing says which.
    const early = await api("complete", { receipt: created.receipt });
    expect(early.status).toBe(409);
    expect(await early.json()).toMatchObject({ code: "PartsMissing", missing: [1, 3] });

    expect((await putPart(created, 1, partData(1))).status).toBe(200);
    expect((await putPart(created, 3, partData(3))).status).toBe(200);
    const completed = await api("complete", { receipt: created.receipt });
    expect(completed.status, await completed.clone().text()).toBe(200);
    expect(await completed.json()).toEqual({ key: created.key });

    const described = await describeObject(created.key, created.receipt, mpEnv);
    expect(described.status).toBe(200);
    const info = (await described.json()) as { size: number; etag: string; encryption: string; keyArn: string; contentType: string; download: string };
    expect(info.size).toBe(content.length);
    expect(info.etag).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(info.encryption).toBe("aws:kms");
    expect(info.keyArn).toMatch(/^arn:aws:kms:us-east-1:000000000000000000000000000000aa:key\//);
    expect(info.contentType).toBe("video/mp4");
    const download = await send(new Request(info.download));
    expect(download.status).toBe(200);
    // Digests: toEqual on 10 MB arrays is too slow to be usable.
    expect(await sha256(new Uint8Array(await download.arrayBuffer()))).toBe(await sha256(content));
  });

  it("a part URL fixes the part's length; part numbers outside the file and non-multipart receipts are refused", async () => {
    const created = await create(content.length);
    const signed = (await (await api("sign", { receipt: created.receipt, partNumber: 3 })).json()) as { url: string; length: number };
    expect(signed.length).toBe(1234);
    const wrongLength = await send(new Request(signed.url, { method: "PUT", headers: { "content-length": "1235" }, body: new Uint8Array(1235) }));
    expect(wrongLength.status).toBe(403);
    expect(await wrongLength.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
    for (const partNumber of [0, 4, 1.5, "1"]) expect((await api("sign", { receipt: created.receipt, partNumber })).status).toBe(400);

    // A POST grant's receipt, a forged one, or none: no part URLs, no listing, no completing.
    const postReceipt = ((await (await grant(mpEnv)).json()) as Grant).receipt;
    for (const receipt of [postReceipt, created.receipt.slice(0, -3) + "AAA", undefined]) {
      for (const path of ["sign", "parts", "complete", "abort"]) {
        const r = await api(path, { receipt, partNumber: 1 });
        expect(r.status).toBe(403);
        expect(await r.json()).toMatchObject({ code: "InvalidReceipt" });
      }
    }
    expect((await api("abort", { receipt: created.receipt })).status).toBe(200);
    const gone = await api("parts", { receipt: created.receipt });
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ code: "NoSuchUpload" });
  });

  it("create checks the token, the name and the size", async () => {
    const guardedMp = { ...mpEnv, LOCAL_DEV: undefined, UPLOAD_PAGE_TOKEN: "page-token" } as Env;
    expect((await api("create", { filename: "x.bin", size: 10 }, guardedMp)).status).toBe(401);
    expect((await api("create", { filename: "x.bin", size: 10 }, guardedMp, bearer)).status).toBe(200);
    for (const body of [{ filename: "", size: 10 }, { filename: "..", size: 10 }, { filename: "a\nb", size: 10 }, { filename: "x.bin", size: 0 }, { filename: "x.bin", size: "10" }]) {
      expect((await api("create", body)).status).toBe(400);
    }
    const limited = await api("create", { filename: "x.bin", size: 1001 }, pageEnv);
    expect(limited.status).toBe(400);
    expect(await limited.json()).toMatchObject({ code: "EntityTooLarge" });
    // A path in the name keeps its last segment, as POST Object's ${filename}.
    expect((await create(10, "C:\\Users\\me\\notes.txt")).key).toMatch(/\/notes\.txt$/);
  });
});

describe("upload page: limits", () => {
  const MiB = 1024 * 1024;
  const config = (vars: Record<string, string | undefined>) => pageConfig({ ...pageEnv, UPLOAD_PAGE_MAX_BYTES: undefined, ...vars } as Env)!;

  it("keeps parts and single POSTs under MAX_REQUEST_BODY_BYTES, grows parts only when 10,000 would not hold the file", () => {
    const standard = config({});
    expect(standard.basePartBytes).toBe(16 * MiB);
    expect(standard.singlePostMaxBytes).toBe(16 * MiB);
    expect(standard.largestPartBytes).toBe(95 * MiB); // whole MiB under 100 MB less 64 KiB
    expect(standard.maxBytes).toBe(95 * MiB * 10_000);
    expect(partSizeFor(standard, 300e6)).toBe(16 * MiB);
    expect(partSizeFor(standard, 16 * MiB * 10_000)).toBe(16 * MiB);
    expect(partSizeFor(standard, 16 * MiB * 10_000 + 1)).toBe(17 * MiB);
    expect(partSizeFor(standard, 95 * MiB * 10_000 + 1)).toBeNull();

    const lowered = config({ MAX_REQUEST_BODY_BYTES: "20000000" });
    expect(lowered.basePartBytes).toBe(16 * MiB);
    expect(lowered.largestPartBytes).toBe(19 * MiB);
    const tight = config({ MAX_REQUEST_BODY_BYTES: "12000000" });
    expect(tight.basePartBytes).toBe(11 * MiB);
    expect(tight.singlePostMaxBytes).toBe(11 * MiB);
    // S3's 5 MiB minimum part wins over a smaller body limit (multipart cannot go lower).
    expect(config({ MAX_REQUEST_BODY_BYTES: "1000000" }).basePartBytes).toBe(5 * MiB);
    // Nonsense falls back to the default.
    expect(config({ MAX_REQUEST_BODY_BYTES: "lots" }).largestPartBytes).toBe(95 * MiB);

    const capped = config({ UPLOAD_PAGE_MAX_BYTES: "1000" });
    expect(capped.maxBytes).toBe(1000);
    expect(capped.singlePostMaxBytes).toBe(1000);
    expect(config({}).maxBytes).toBeLessThanOrEqual(5 * 1024 ** 4);
  });

  it("refuses without a token unless LOCAL_DEV is exactly true; a blank token is no token", () => {
    expect(refusal(config({ LOCAL_DEV: undefined, UPLOAD_PAGE_TOKEN: undefined }))).toContain("Set UPLOAD_PAGE_TOKEN");
    expect(refusal(config({ LOCAL_DEV: undefined, UPLOAD_PAGE_TOKEN: "   " }))).not.toBeNull();
    expect(refusal(config({ LOCAL_DEV: "yes", UPLOAD_PAGE_TOKEN: undefined }))).not.toBeNull();
    expect(refusal(config({ LOCAL_DEV: "TRUE", UPLOAD_PAGE_TOKEN: undefined }))).not.toBeNull();
    expect(refusal(config({ LOCAL_DEV: "true", UPLOAD_PAGE_TOKEN: undefined }))).toBeNull();
    expect(refusal(config({ LOCAL_DEV: undefined, UPLOAD_PAGE_TOKEN: "t" }))).toBeNull();
  });
});
