/**
 * ListMultipartUploads does bounded work per request: every D1 query that lists uploads is
 * counted (its rows_read as D1 reports it), and pages chain to the whole set exactly once.
 * Uploads are cloned in D1 from one real upload (thousands of CreateMultipartUpload calls
 * would only make the test slow; listing reads nothing but these rows).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createUpload } from "../support/multipart";
import { TENANT_B, createBucket, seedIdentities, send, uniqueBucket, xmlBlocks, xmlValue } from "../support/s3-harness";

/** The handler's budget: 3 queries of at most 1,001 rows (D1 counts one more row per query where a scan ends). */
const MAX_ROWS_PER_REQUEST = 3006;

interface Query {
  sql: string;
  rowsRead: number;
}

/** A D1 binding that records rows_read of every statement run with all(). */
function countingDb(db: D1Database, log: Query[]): D1Database {
  const wrap = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement =>
    new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args), sql);
        if (prop === "all") {
          return async () => {
            const result = await target.all();
            log.push({ sql, rowsRead: result.meta.rows_read });
            return result;
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql), sql);
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Inserts `count` copies of a real upload, keys and (optionally) tenant from SQL expressions over i = 0..count-1. */
async function cloneUploads(tag: string, count: number, keyExpr: string, tenantExpr = "u.tenant_id"): Promise<void> {
  const row = await env.DB.prepare("SELECT * FROM multipart_uploads WHERE upload_id = ?").bind(templateId).first<Record<string, unknown>>();
  const columns = Object.keys(row!);
  const exprs = columns.map((c) => (c === "upload_id" ? `substr(u.upload_id, 1, 9) || '${tag}' || printf('%021d', n.i)` : c === "object_key" ? keyExpr : c === "tenant_id" ? tenantExpr : `u.${c}`));
  await env.DB.prepare(
    `INSERT INTO multipart_uploads (${columns.join(", ")})
     WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
     SELECT ${exprs.join(", ")} FROM n, multipart_uploads u WHERE u.upload_id = ?1`,
  )
    .bind(templateId, count)
    .run();
}

interface Page {
  keys: string[];
  ids: string[];
  prefixes: string[];
  truncated: boolean;
  nextKey: string | null;
  nextId: string | null;
  listQueries: Query[];
  all: Query[];
}

async function listPage(bucket: string, query: Record<string, string>): Promise<Page> {
  const log: Query[] = [];
  const r = await send("adminA", { method: "GET", bucket, query: { uploads: "", ...query }, env: { DB: countingDb(env.DB, log) } });
  const text = await r.text();
  expect(r.status, text).toBe(200);
  const uploads = xmlBlocks(text, "Upload");
  return {
    keys: uploads.map((u) => xmlValue(u, "Key")!),
    ids: uploads.map((u) => xmlValue(u, "UploadId")!),
    prefixes: xmlBlocks(text, "CommonPrefixes").map((p) => xmlValue(p, "Prefix")!),
    truncated: xmlValue(text, "IsTruncated") === "true",
    nextKey: xmlValue(text, "NextKeyMarker"),
    nextId: xmlValue(text, "NextUploadIdMarker"),
    all: log,
    listQueries: log.filter((q) => /FROM multipart_uploads/.test(q.sql) && /ORDER BY object_key/.test(q.sql)),
  };
}

/** Follows NextKeyMarker/NextUploadIdMarker to the end; returns every page. */
async function allPages(bucket: string, query: Record<string, string>): Promise<Page[]> {
  const pages: Page[] = [];
  let markers: Record<string, string> = {};
  for (;;) {
    const page = await listPage(bucket, { ...query, ...markers });
    pages.push(page);
    if (!page.truncated) return pages;
    expect(page.nextKey, "a truncated page names where to go on").not.toBeNull();
    markers = { "key-marker": page.nextKey!, "upload-id-marker": page.nextId ?? "" };
    expect(pages.length, "paging does not end").toBeLessThan(50);
  }
}

const rowsRead = (p: Page) => p.listQueries.reduce((n, q) => n + q.rowsRead, 0);

const bucket = uniqueBucket("mpubound");
let templateId: string;

beforeAll(async () => {
  await seedIdentities();
  await createBucket("adminA", bucket);
  templateId = await createUpload("adminA", bucket, "template");
});

describe("ListMultipartUploads reads a bounded number of rows per request", () => {
  it("2,500 uploads, max-uploads 1000 and 7: pages of exactly that size chain to the whole set once each; ≤ max-uploads + 2 rows read per page", async () => {
    await cloneUploads("fla", 2500, "printf('flat/k%05d', n.i)");
    const expected = Array.from({ length: 2500 }, (_, i) => `flat/k${String(i).padStart(5, "0")}`);
    for (const max of [1000, 7]) {
      const pages = max === 7 ? [await listPage(bucket, { prefix: "flat/", "max-uploads": "7", "key-marker": "flat/k01000" })] : await allPages(bucket, { prefix: "flat/", "max-uploads": String(max) });
      for (const p of pages) {
        expect(p.listQueries.length).toBe(1);
        // LIMIT max + 1 (a full page and the sign of more); D1 also counts the row that ends the scan.
        expect(rowsRead(p), `rows read for a page of ${max}`).toBeLessThanOrEqual(max + 2);
      }
      if (max === 1000) {
        expect(pages.map((p) => p.keys.length)).toEqual([1000, 1000, 500]);
        expect(pages.flatMap((p) => p.keys)).toEqual(expected);
        const ids = pages.flatMap((p) => p.ids);
        expect(new Set(ids).size).toBe(2500);
      } else {
        expect(pages[0]!.keys).toEqual(expected.slice(1001, 1008));
      }
    }
  });

  it("uploads rolled up by a delimiter (5 prefixes × 1,200 uploads): ≤ 3,006 rows read per request, truncated early; the pages name each prefix once", async () => {
    await cloneUploads("rol", 6000, "printf('roll/p%d/u%05d', n.i / 1200, n.i % 1200)");
    const pages = await allPages(bucket, { prefix: "roll/", delimiter: "/" });
    expect(pages.flatMap((p) => p.prefixes)).toEqual(["roll/p0/", "roll/p1/", "roll/p2/", "roll/p3/", "roll/p4/"]);
    expect(pages.flatMap((p) => p.keys)).toEqual([]);
    for (const p of pages) {
      expect(p.listQueries.length).toBeLessThanOrEqual(3);
      expect(rowsRead(p)).toBeLessThanOrEqual(MAX_ROWS_PER_REQUEST);
    }
    // The first request stopped at its budget with fewer than max-uploads entries.
    expect(pages[0]!.truncated).toBe(true);
    expect(pages.length).toBe(2);
    console.log(`[mpu-list] rollup rows read per request: ${pages.map(rowsRead).join(", ")}`);
  });

  it("a marker naming a rolled-up prefix skips its uploads without reading them", async () => {
    const p = await listPage(bucket, { prefix: "roll/", delimiter: "/", "key-marker": "roll/p3/" });
    expect(p.prefixes).toEqual(["roll/p4/"]);
    expect(p.truncated).toBe(false);
    expect(rowsRead(p)).toBeLessThanOrEqual(1200 + 1);
  });

  it("a prefix matching nothing reads nothing, however many uploads sort before and after it", async () => {
    const p = await listPage(bucket, { prefix: "flat/k99" });
    expect(p.keys).toEqual([]);
    expect(rowsRead(p)).toBeLessThanOrEqual(1);
    const q = await listPage(bucket, { prefix: "nothing-here/" });
    expect(q.keys).toEqual([]);
    expect(rowsRead(q)).toBeLessThanOrEqual(1);
  });

  it("3,000 leftover uploads of another tenant under the same bucket name are neither listed nor read", async () => {
    await cloneUploads("for", 3000, "printf('foreign/x%05d', n.i)", `'${TENANT_B}'`);
    const p = await listPage(bucket, { prefix: "foreign/" });
    expect(p.keys).toEqual([]);
    expect(rowsRead(p)).toBeLessThanOrEqual(1);
    const all = await allPages(bucket, { delimiter: "/" });
    expect(all.flatMap((x) => x.prefixes)).toEqual(["flat/", "roll/"]);
    expect(all.flatMap((x) => x.keys)).toEqual(["template"]);
    for (const x of all) expect(rowsRead(x)).toBeLessThanOrEqual(MAX_ROWS_PER_REQUEST);
  });
});
