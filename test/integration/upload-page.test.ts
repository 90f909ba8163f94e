import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import type { Env } from "../../src/env";
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
