/**
 * Browser uploads in a real Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core): a plain HTML form with success_action_redirect, fetch(FormData) from
 * a page on another origin (CORS) with a 20 MiB file, a policy violation as a person sees
 * it, and the upload page end to end. Forms come from @aws-sdk/s3-presigned-post.
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutBucketCorsCommand } from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpoint, s3, uniqueBucket } from "./support/clients";
import { missing, programPath } from "./support/programs";

/** CHROMIUM_PATH, else chromium on PATH (support/programs.ts); skipped with the install command when absent. */
const noChromium = missing("browser-uploads.test.ts", "chromium");
const client = s3("adminA");
const bucket = uniqueBucket("browser");
let browser: Browser;
let app: Server;
/** The "web app" origin: a different port than the endpoint, so a different origin. */
let appOrigin: string;
/** HTML documents the app server serves, by path. */
const pages = new Map<string, string>();

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

beforeAll(async () => {
  app = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const html = pages.get(path) ?? (path === "/done" ? "<!doctype html><title>done</title><p id=done>stored</p>" : "<!doctype html><title>app</title>");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
  appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;

  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await client.send(
    new PutBucketCorsCommand({
      Bucket: bucket,
      CORSConfiguration: { CORSRules: [{ AllowedOrigins: [appOrigin], AllowedMethods: ["POST", "GET"], AllowedHeaders: ["*"], MaxAgeSeconds: 60 }] },
    }),
  );
  browser = await chromium.launch({
    executablePath: programPath("chromium"),
    args: ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => app?.close(resolve));
});

async function presignedForm(key: string, fields: Record<string, string>, conditions: unknown[] = []) {
  return createPresignedPost(client, {
    Bucket: bucket,
    Key: key,
    Fields: fields,
    Conditions: [["content-length-range", 0, 64 * 1024 * 1024], ...conditions] as never,
    Expires: 600,
  });
}

function formHtml(url: string, fields: Record<string, string>): string {
  const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escape(name)}" value="${escape(value)}">`)
    .join("\n");
  return `<!doctype html><title>form</title>
<form action="${escape(url)}" method="post" enctype="multipart/form-data">
${inputs}
<input type="file" name="file">
<button type="submit" id="send">Upload</button>
</form>`;
}

async function withPage<T>(work: (page: Page) => Promise<T>): Promise<T> {
  const page = await browser.newPage();
  try {
    return await work(page);
  } finally {
    await page.close();
  }
}

describe.skipIf(noChromium)("in Chromium", () => {
  it("submits a plain HTML form and follows success_action_redirect", async () => {
    const content = randomBytes(300_000);
    const { url, fields } = await presignedForm("forms/${filename}", { success_action_redirect: `${appOrigin}/done`, "x-amz-server-side-encryption": "aws:kms" });
    pages.set("/form-redirect", formHtml(url, fields));
    const landed = await withPage(async (page) => {
      await page.goto(`${appOrigin}/form-redirect`);
      await page.setInputFiles('input[type="file"]', { name: "report.bin", mimeType: "application/octet-stream", buffer: content });
      await Promise.all([page.waitForURL(/\/done\?/), page.click("#send")]);
      return new URL(page.url());
    });
    expect(landed.searchParams.get("bucket")).toBe(bucket);
    expect(landed.searchParams.get("key")).toBe("forms/report.bin");
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "forms/report.bin" }));
    expect(got.ServerSideEncryption).toBe("aws:kms");
    expect(`${got.ETag}`).toBe(landed.searchParams.get("etag"));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(content));
  });

  it("uploads 20 MiB with fetch(FormData) from another origin (CORS) and reads the response", async () => {
    const { url, fields } = await presignedForm("fetched/${filename}", { "x-amz-server-side-encryption": "aws:kms", success_action_status: "201" });
    const result = await withPage(async (page) => {
      await page.goto(`${appOrigin}/`);
      return page.evaluate(
        async ({ url, fields }) => {
          const size = 20 * 1024 * 1024;
          const bytes = new Uint8Array(size);
          for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
          const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
          const data = new FormData();
          for (const [name, value] of Object.entries(fields)) data.append(name, value);
          data.append("file", new Blob([bytes], { type: "application/octet-stream" }), "big.bin");
          const response = await fetch(url, { method: "POST", body: data });
          return {
            status: response.status,
            text: await response.text(),
            etag: response.headers.get("etag"),
            sse: response.headers.get("x-amz-server-side-encryption"),
            keyArn: response.headers.get("x-amz-server-side-encryption-aws-kms-key-id"),
            digest,
          };
        },
        { url, fields },
      );
    });
    expect(result.status, result.text).toBe(201);
    expect(result.text).toContain("<Key>fetched/big.bin</Key>");
    // Readable cross-origin only because the bucket's CORS rule matched and exposes them.
    expect(result.etag).toBeTruthy();
    expect(result.sse).toBe("aws:kms");
    expect(result.keyArn).toMatch(/^arn:aws:kms:/);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "fetched/big.bin" }));
    expect(head.ContentLength).toBe(20 * 1024 * 1024);
    expect(head.SSEKMSKeyId).toBe(result.keyArn);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "fetched/big.bin" }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(result.digest);
  });

  it("shows the S3 error of a policy violation (form submit and cross-origin fetch)", async () => {
    const { url, fields } = await presignedForm("allowed/${filename}", {});
    const forbidden = { ...fields, key: "forbidden/x.txt" };
    pages.set("/form-violation", formHtml(url, forbidden));
    const shown = await withPage(async (page) => {
      await page.goto(`${appOrigin}/form-violation`);
      await page.setInputFiles('input[type="file"]', { name: "x.txt", mimeType: "text/plain", buffer: Buffer.from("nope") });
      await Promise.all([page.waitForURL((u) => u.toString().startsWith(url)), page.click("#send")]);
      return page.content();
    });
    expect(shown).toContain("AccessDenied");
    expect(shown).toContain("Policy Condition failed");
    expect(shown).toContain("allowed/");

    const fetched = await withPage(async (page) => {
      await page.goto(`${appOrigin}/`);
      return page.evaluate(
        async ({ url, fields }) => {
          const data = new FormData();
          for (const [name, value] of Object.entries(fields)) data.append(name, value);
          data.append("file", new Blob(["nope"]), "x.txt");
          const response = await fetch(url, { method: "POST", body: data });
          return { status: response.status, text: await response.text() };
        },
        { url, fields: forbidden },
      );
    });
    expect(fetched.status).toBe(403);
    expect(fetched.text).toContain("<Code>AccessDenied</Code>");
    expect(fetched.text).toContain("Invalid according to Policy: Policy Condition failed");
  });

  it("the upload page: pick a file, watch the progress, get key, size, key ARN and a working download link", async () => {
    const content = randomBytes(3 * 1024 * 1024 + 123);
    const shown = await withPage(async (page) => {
      await page.goto(`${endpoint()}/_upload`);
      await page.setInputFiles("#file", { name: "holiday photo.jpg", mimeType: "image/jpeg", buffer: content });
      await page.click("#upload");
      await page.waitForSelector("#result:not([hidden])", { timeout: 60_000 });
      return {
        key: await page.textContent("#result-key"),
        size: await page.textContent("#result-size"),
        arn: await page.textContent("#result-key-arn"),
        encryption: await page.textContent("#result-encryption"),
        percent: await page.textContent("#percent"),
        download: await page.getAttribute("#download", "href"),
        error: await page.isVisible("#error"),
      };
    });
    expect(shown.error).toBe(false);
    expect(shown.key).toMatch(/^page-uploads\/.+\/holiday photo\.jpg$/);
    expect(shown.size).toContain(`${content.length} bytes`);
    expect(shown.encryption).toBe("aws:kms");
    expect(shown.arn).toMatch(/^arn:aws:kms:us-east-1:000000000000000000000000000000aa:key\//);
    expect(shown.percent).toBe("100%");
    const download = await fetch(shown.download!);
    expect(download.status).toBe(200);
    expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(sha256(content));
  });
});
