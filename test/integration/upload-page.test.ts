import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import type { Env } from "../../src/env";
import { multipartBody, type Part } from "../support/post-form";
import { seedIdentities } from "../support/worker-client";

const ORIGIN = "http://gw.test";
const app = createApp();
const pageEnv: Env = { ...env, UPLOAD_PAGE_ACCESS_KEY_ID: "LOCALADMINA", UPLOAD_PAGE_BUCKET: "page-bucket", UPLOAD_PAGE_MAX_BYTES: "1000", UPLOAD_PAGE_TOKEN: undefined };

function send(request: Request, e: Env = pageEnv): Promise<Response> {
  return Promise.resolve(app.fetch(request, e));
}

async function grant(e: Env = pageEnv, headers: Record<string, string> = {}): Promise<Response> {
  return send(new Request(`${ORIGIN}/_upload/form`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ filename: "notes.txt", size: 11 }) }), e);
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
    const { url, fields } = (await r.json()) as { url: string; fields: Record<string, string> };
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

    const described = await send(new Request(`${ORIGIN}/_upload/object?key=${encodeURIComponent(key)}`));
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

  it("only describes its own keys, and requires the token when one is configured", async () => {
    expect((await send(new Request(`${ORIGIN}/_upload/object?key=elsewhere/x`))).status).toBe(400);
    const guarded: Env = { ...pageEnv, UPLOAD_PAGE_TOKEN: "page-token" };
    expect((await grant(guarded)).status).toBe(401);
    expect((await grant(guarded, { authorization: "Bearer wrong" })).status).toBe(401);
    expect((await grant(guarded, { authorization: "Bearer page-token" })).status).toBe(200);
    expect((await send(new Request(`${ORIGIN}/_upload/object?key=page-uploads/x`), guarded)).status).toBe(401);
  });
});
