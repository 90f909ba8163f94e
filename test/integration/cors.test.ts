import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, createBucket, errorCode, HOST, seedIdentities } from "../support/worker-client";

const BUCKET = "cors-bucket";
const PLAIN = "cors-none";

const CONFIG = `<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <CORSRule>
    <ID>app</ID>
    <AllowedOrigin>https://app.example.com</AllowedOrigin>
    <AllowedOrigin>http://*.example.org</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedMethod>POST</AllowedMethod>
    <AllowedHeader>content-type</AllowedHeader>
    <AllowedHeader>x-amz-*</AllowedHeader>
    <ExposeHeader>x-amz-meta-color</ExposeHeader>
    <MaxAgeSeconds>600</MaxAgeSeconds>
  </CORSRule>
  <CORSRule>
    <AllowedOrigin>*</AllowedOrigin>
    <AllowedMethod>HEAD</AllowedMethod>
  </CORSRule>
</CORSConfiguration>`;

/** workerd's WebCrypto has MD5 (non-standard), which Content-MD5 needs. */
async function md5(s: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("MD5", new TextEncoder().encode(s)));
  return btoa(String.fromCharCode(...digest));
}

async function putCors(xml: string, headers?: Record<string, string>) {
  headers ??= { "content-md5": await md5(xml) };
  return call("adminA", { method: "PUT", bucket: BUCKET, query: { cors: "" }, body: xml, headers });
}

function raw(method: string, path: string, headers: Record<string, string>): Promise<Response> {
  return (exports as unknown as { default: Fetcher }).default.fetch(new Request(`http://${HOST}${path}`, { method, headers }));
}

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", BUCKET);
  await createBucket("adminA", PLAIN);
});

describe("Put/Get/DeleteBucketCors", () => {
  it("stores, returns and deletes the configuration", async () => {
    const missing = await call("adminA", { method: "GET", bucket: BUCKET, query: { cors: "" } });
    expect(missing.status).toBe(404);
    expect(await errorCode(missing)).toBe("NoSuchCORSConfiguration");

    expect((await putCors(CONFIG)).status).toBe(200);
    const got = await call("adminA", { method: "GET", bucket: BUCKET, query: { cors: "" } });
    expect(got.status).toBe(200);
    const xml = await got.text();
    expect(xml).toContain("<ID>app</ID>");
    expect(xml).toContain("<AllowedOrigin>http://*.example.org</AllowedOrigin>");
    expect(xml).toContain("<MaxAgeSeconds>600</MaxAgeSeconds>");
    // S3's element order within a rule.
    expect(xml.indexOf("<AllowedHeader>")).toBeLessThan(xml.indexOf("<AllowedMethod>"));
    expect(xml.indexOf("<AllowedMethod>")).toBeLessThan(xml.indexOf("<AllowedOrigin>"));
    expect(xml.indexOf("<AllowedOrigin>")).toBeLessThan(xml.indexOf("<ExposeHeader>"));

    const other = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    expect((await call("adminA", { method: "PUT", bucket: PLAIN, query: { cors: "" }, body: other, headers: { "content-md5": await md5(other) } })).status).toBe(200);
    expect((await call("adminA", { method: "DELETE", bucket: PLAIN, query: { cors: "" } })).status).toBe(204);
    expect(await errorCode(await call("adminA", { method: "GET", bucket: PLAIN, query: { cors: "" } }))).toBe("NoSuchCORSConfiguration");
  });

  it("validates the document as S3 does", async () => {
    const rule = (inner: string) => `<CORSConfiguration><CORSRule>${inner}</CORSRule></CORSConfiguration>`;
    const cases: Array<[string, string, RegExp?]> = [
      [rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"), "InvalidRequest", /Unsupported method is PATCH/],
      [rule("<AllowedOrigin>*</AllowedOrigin>"), "MalformedXML"],
      [rule("<AllowedMethod>GET</AllowedMethod>"), "MalformedXML"],
      [rule("<AllowedOrigin>http://*.*.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"), "InvalidRequest", /can not have more than one wildcard/],
      [rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>*-*</AllowedHeader>"), "InvalidRequest", /AllowedHeader/],
      [rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds>"), "MalformedXML"],
      ["<CORSConfiguration></CORSConfiguration>", "MalformedXML"],
      ["<NotCors/>", "MalformedXML"],
    ];
    for (const [xml, code, message] of cases) {
      const r = await putCors(xml);
      expect(r.status, xml).toBe(400);
      const text = await r.text();
      expect(text, xml).toContain(`<Code>${code}</Code>`);
      if (message) expect(text).toMatch(message);
    }
    const many = `<CORSConfiguration>${"<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>".repeat(101)}</CORSConfiguration>`;
    expect(await errorCode(await putCors(many))).toBe("InvalidRequest");
    const noMd5 = await putCors(CONFIG, {});
    expect(noMd5.status).toBe(400);
    expect(await noMd5.text()).toContain("Content-MD5");
  });

  it("is configuration of the owning tenant only", async () => {
    const r = await call("adminB", { method: "PUT", bucket: BUCKET, query: { cors: "" }, body: CONFIG, headers: { "content-md5": await md5(CONFIG) } });
    expect(r.status).toBe(403);
    expect((await call("adminB", { method: "GET", bucket: BUCKET, query: { cors: "" } })).status).toBe(403);
  });
});

describe("preflight and actual responses", () => {
  beforeAll(async () => {
    expect((await putCors(CONFIG)).status).toBe(200);
  });

  it("answers a matching preflight on bucket and object URLs", async () => {
    for (const path of [`/${BUCKET}`, `/${BUCKET}/some/key.txt`]) {
      const r = await raw("OPTIONS", path, {
        origin: "https://app.example.com",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "Content-Type, X-Amz-Server-Side-Encryption",
      });
      expect(r.status).toBe(200);
      expect(r.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
      expect(r.headers.get("access-control-allow-credentials")).toBe("true");
      expect(r.headers.get("access-control-allow-methods")).toBe("GET, PUT, POST");
      expect(r.headers.get("access-control-allow-headers")).toBe("content-type, x-amz-server-side-encryption");
      expect(r.headers.get("access-control-max-age")).toBe("600");
      expect(r.headers.get("vary")).toContain("Origin");
    }
  });

  it("ignores a presigned query on a preflight (no authentication)", async () => {
    const r = await raw("OPTIONS", `/${BUCKET}/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=LOCALADMINA%2F20200101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20200101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00`, {
      origin: "http://a.example.org",
      "access-control-request-method": "GET",
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBe("http://a.example.org");
  });

  it("uses the wildcard rule: '*' and no credentials", async () => {
    const r = await raw("OPTIONS", `/${BUCKET}/k`, { origin: "https://elsewhere.test", "access-control-request-method": "HEAD" });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBe("*");
    expect(r.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("refuses what no rule allows, as S3", async () => {
    const refused: Array<Record<string, string>> = [
      { origin: "https://evil.test", "access-control-request-method": "PUT" },
      { origin: "https://app.example.com", "access-control-request-method": "DELETE" },
      { origin: "https://app.example.com", "access-control-request-method": "PUT", "access-control-request-headers": "authorization" },
      { origin: "http://example.org", "access-control-request-method": "GET" },
    ];
    for (const headers of refused) {
      const r = await raw("OPTIONS", `/${BUCKET}/k`, headers);
      expect(r.status, JSON.stringify(headers)).toBe(403);
      const text = await r.text();
      expect(text).toContain("<Code>CORSResponse</Code>");
      expect(text).toContain("This CORS request is not allowed.");
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
    }
    const noRules = await raw("OPTIONS", `/${PLAIN}/k`, { origin: "https://app.example.com", "access-control-request-method": "GET" });
    expect(noRules.status).toBe(403);
    expect(await noRules.text()).toContain("CORS is not enabled for this bucket.");
    const noOrigin = await raw("OPTIONS", `/${BUCKET}/k`, { "access-control-request-method": "GET" });
    expect(noOrigin.status).toBe(400);
    expect(await noOrigin.text()).toContain("Origin request header needed");
    const noMethod = await raw("OPTIONS", `/${BUCKET}/k`, { origin: "https://app.example.com" });
    expect(noMethod.status).toBe(400);
    expect((await raw("OPTIONS", `/no-such-bucket-x/k`, { origin: "https://app.example.com", "access-control-request-method": "GET" })).status).toBe(404);
  });

  it("adds CORS headers to actual responses, errors included, exposing ETag, SSE and metadata headers", async () => {
    const put = await call("adminA", { method: "PUT", bucket: BUCKET, key: "doc.txt", body: "hello", headers: { origin: "https://app.example.com", "x-amz-meta-color": "red" } });
    expect(put.status).toBe(200);
    expect(put.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    const expose = put.headers.get("access-control-expose-headers")!.toLowerCase().split(", ");
    for (const h of ["etag", "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-request-id", "x-amz-meta-color"]) expect(expose).toContain(h);

    const get = await call("adminA", { method: "GET", bucket: BUCKET, key: "doc.txt", headers: { origin: "http://x.example.org" } });
    expect(get.status).toBe(200);
    expect(get.headers.get("access-control-allow-origin")).toBe("http://x.example.org");
    expect(get.headers.get("access-control-expose-headers")).toContain("x-amz-meta-color");
    expect(get.headers.get("vary")).toContain("Origin");
    await get.arrayBuffer();

    const missing = await call("adminA", { method: "GET", bucket: BUCKET, key: "missing.txt", headers: { origin: "https://app.example.com" } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(await errorCode(missing)).toBe("NoSuchKey");

    const wrongOrigin = await call("adminA", { method: "GET", bucket: BUCKET, key: "doc.txt", headers: { origin: "https://evil.test" } });
    expect(wrongOrigin.headers.get("access-control-allow-origin")).toBeNull();
    expect(wrongOrigin.headers.get("vary")).toContain("Origin");
    await wrongOrigin.arrayBuffer();

    const wrongMethod = await call("adminA", { method: "DELETE", bucket: BUCKET, key: "doc.txt", headers: { origin: "https://app.example.com" } });
    expect(wrongMethod.status).toBe(204);
    expect(wrongMethod.headers.get("access-control-allow-origin")).toBeNull();

    const plain = await call("adminA", { method: "GET", bucket: PLAIN, headers: { origin: "https://app.example.com" } });
    expect(plain.headers.get("access-control-allow-origin")).toBeNull();
    expect(plain.headers.get("vary")).toBeNull();
    await plain.arrayBuffer();
  });
});
