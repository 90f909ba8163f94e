import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { runLifecycle, type LifecycleBudget } from "../../src/lifecycle/job";
import { runMultipartCleanup } from "../../src/multipart/cleanup-job";
import { createUpload, multipartPut, traces } from "../support/multipart";
import { pseudoRandom } from "../support/sources";
import { createBucket, expectError, md5Base64, seedIdentities, send, uniqueBucket, xmlValue, xmlValues } from "../support/s3-harness";

/** Bucket lifecycle rules: the configuration API, x-amz-expiration, and the scheduled job driven with a fixed clock. */
const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
const DAY = 24 * 3600 * 1000;
const lifecycle = (rules: string) => `<LifecycleConfiguration ${NS}>${rules}</LifecycleConfiguration>`;
const created: string[] = [];

async function newBucket(prefix: string): Promise<string> {
  const b = uniqueBucket(prefix);
  await createBucket("adminA", b);
  created.push(b);
  return b;
}

async function putRules(bucket: string, body: string, who: "adminA" | "memberA" | "adminB" = "adminA"): Promise<Response> {
  return send(who, { method: "PUT", bucket, query: { lifecycle: "" }, body, headers: { "content-md5": await md5Base64(body) } });
}

const put = (bucket: string, key: string, body: string | Uint8Array = "x") => send("adminA", { method: "PUT", bucket, key, body });
const exists = async (bucket: string, key: string) => (await send("adminA", { method: "HEAD", bucket, key })).status === 200;
const keys = async (bucket: string) => xmlValues(await (await send("adminA", { method: "GET", bucket, query: { "list-type": "2" } })).text(), "Key");

beforeAll(seedIdentities);

// The job serves every bucket with rules: leave none behind for the next test's budget.
afterEach(async () => {
  for (const b of created.splice(0)) await send("adminA", { method: "DELETE", bucket: b, query: { lifecycle: "" } });
});

describe("Put/Get/DeleteBucketLifecycleConfiguration", () => {
  it("round-trips a configuration in AWS's XML; Delete (204) leaves 404 NoSuchLifecycleConfiguration", async () => {
    const bucket = await newBucket("lc-api");
    await expectError(send("adminA", { method: "GET", bucket, query: { lifecycle: "" } }), 404, "NoSuchLifecycleConfiguration");
    const body = lifecycle(
      `<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule>` +
        `<Rule><ID>uploads</ID><Filter></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>` +
        `<Rule><ID>big-tmp</ID><Filter><And><Prefix>tmp/</Prefix><Tag><Key>class</Key><Value>scratch</Value></Tag><ObjectSizeGreaterThan>1024</ObjectSizeGreaterThan><ObjectSizeLessThan>1048576</ObjectSizeLessThan></And></Filter><Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>` +
        `<Rule><ID>legacy</ID><Prefix>old/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays></NoncurrentVersionExpiration></Rule>`,
    );
    const r = await putRules(bucket, body);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-amz-transition-default-minimum-object-size")).toBe("all_storage_classes_128K");
    const got = await send("adminA", { method: "GET", bucket, query: { lifecycle: "" } });
    expect(got.status).toBe(200);
    expect(await got.text()).toBe(
      `<?xml version="1.0" encoding="UTF-8"?>\n<LifecycleConfiguration ${NS}>` +
        `<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule>` +
        `<Rule><ID>uploads</ID><Filter></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>` +
        `<Rule><ID>big-tmp</ID><Filter><And><Prefix>tmp/</Prefix><Tag><Key>class</Key><Value>scratch</Value></Tag><ObjectSizeGreaterThan>1024</ObjectSizeGreaterThan><ObjectSizeLessThan>1048576</ObjectSizeLessThan></And></Filter><Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration></Rule>` +
        `<Rule><ID>legacy</ID><Prefix>old/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays></NoncurrentVersionExpiration></Rule>` +
        `</LifecycleConfiguration>`,
    );
    expect((await send("adminA", { method: "DELETE", bucket, query: { lifecycle: "" } })).status).toBe(204);
    const e = await expectError(send("adminA", { method: "GET", bucket, query: { lifecycle: "" } }), 404, "NoSuchLifecycleConfiguration");
    expect(e.message).toBe("The lifecycle configuration does not exist");
    expect(xmlValue(e.text, "BucketName")).toBe(bucket);
  });

  it("a rule without an ID gets one, as on AWS", async () => {
    const bucket = await newBucket("lc-id");
    expect((await putRules(bucket, lifecycle(`<Rule><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`))).status).toBe(200);
    const id = xmlValue(await (await send("adminA", { method: "GET", bucket, query: { lifecycle: "" } })).text(), "ID");
    expect(id).toMatch(/^[A-Za-z0-9+/=]{48}$/);
  });

  const rule = (inner: string) => `<Rule><ID>r</ID><Filter><Prefix>p/</Prefix></Filter><Status>Enabled</Status>${inner}</Rule>`;
  it.each([
    ["Days 0", rule("<Expiration><Days>0</Days></Expiration>"), 400, "InvalidArgument", "'Days' for Expiration action must be a positive integer"],
    ["a Date that is not midnight UTC", rule("<Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>"), 400, "InvalidArgument", "'Date' must be at midnight GMT"],
    ["Days and Date together", rule("<Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>"), 400, "MalformedXML", null],
    ["a rule without an action", rule(""), 400, "InvalidRequest", "At least one action needs to be specified in a rule"],
    ["DaysAfterInitiation 0", rule("<AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>"), 400, "InvalidArgument", "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer"],
    [
      "AbortIncompleteMultipartUpload with a tag filter",
      `<Rule><ID>r</ID><Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`,
      400, "InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with Tags or Object Size",
    ],
    ["Days that are not a number", rule("<Expiration><Days>ten</Days></Expiration>"), 400, "MalformedXML", null],
    ["an unknown Status", `<Rule><ID>r</ID><Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>`, 400, "MalformedXML", null],
    ["both Filter and Prefix", `<Rule><ID>r</ID><Prefix>a</Prefix><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`, 400, "MalformedXML", null],
    ["neither Filter nor Prefix", `<Rule><ID>r</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`, 400, "MalformedXML", null],
    ["two predicates without And", `<Rule><ID>r</ID><Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`, 400, "MalformedXML", null],
    [
      "ObjectSizeGreaterThan not below ObjectSizeLessThan",
      `<Rule><ID>r</ID><Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
      400, "InvalidArgument", "'ObjectSizeGreaterThan' should be less than 'ObjectSizeLessThan'",
    ],
    ["a 256-character ID", `<Rule><ID>${"i".repeat(256)}</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`, 400, "InvalidArgument", "ID length should not exceed allowed limit of 255"],
    ["two rules with one ID", rule("<Expiration><Days>1</Days></Expiration>") + rule("<Expiration><Days>2</Days></Expiration>"), 400, "InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule"],
    ["no rule at all", "", 400, "MalformedXML", null],
    ["a Transition", rule("<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>"), 501, "NotImplemented", null],
  ] as Array<[string, string, number, string, string | null]>)("%s: refused with AWS's error, nothing stored", async (_name, rules, status, code, message) => {
    const bucket = await newBucket("lc-bad");
    const e = await expectError(putRules(bucket, lifecycle(rules)), status, code);
    if (message) expect(e.message).toBe(message);
    await expectError(send("adminA", { method: "GET", bucket, query: { lifecycle: "" } }), 404, "NoSuchLifecycleConfiguration");
  });

  it("1000 rules fit, 1001 do not; Content-MD5 is required", async () => {
    const bucket = await newBucket("lc-many");
    const many = (n: number) => lifecycle(Array.from({ length: n }, (_, i) => `<Rule><ID>r${i}</ID><Filter><Prefix>p${i}/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`).join(""));
    expect((await putRules(bucket, many(1000))).status).toBe(200);
    await expectError(putRules(bucket, many(1001)), 400, "InvalidRequest");
    expect(xmlValues(await (await send("adminA", { method: "GET", bucket, query: { lifecycle: "" } })).text(), "ID")).toHaveLength(1000);
    await expectError(send("adminA", { method: "PUT", bucket, query: { lifecycle: "" }, body: many(1) }), 400, "InvalidRequest");
  });

  it("belongs to the owning tenant; s3:PutLifecycleConfiguration is the action a policy names (Delete included)", async () => {
    const bucket = await newBucket("lc-auth");
    const body = lifecycle(`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`);
    await expectError(putRules(bucket, body, "adminB"), 403, "AccessDenied");
    await expectError(send("adminB", { method: "GET", bucket, query: { lifecycle: "" } }), 403, "AccessDenied");
    await expectError(send("adminA", { method: "GET", bucket, query: { lifecycle: "" }, anonymous: true }), 403, "AccessDenied");
    expect((await putRules(bucket, body, "memberA")).status).toBe(200);
    const deny = JSON.stringify({ Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:PutLifecycleConfiguration", Resource: `arn:aws:s3:::${bucket}` }] });
    expect((await send("adminA", { method: "PUT", bucket, query: { policy: "" }, body: deny })).status).toBe(204);
    await expectError(putRules(bucket, body), 403, "AccessDenied");
    await expectError(send("adminA", { method: "DELETE", bucket, query: { lifecycle: "" } }), 403, "AccessDenied");
    expect((await send("adminA", { method: "GET", bucket, query: { lifecycle: "" } })).status).toBe(200);
    expect((await send("adminA", { method: "DELETE", bucket, query: { policy: "" } })).status).toBe(204);
  });
});

describe("x-amz-expiration", () => {
  const FORMAT = /^expiry-date="(\w{3}, \d{2} \w{3} \d{4} 00:00:00 GMT)", rule-id="([^"]*)"$/;

  it("on PUT, GET and HEAD of an object an enabled rule covers: the earliest expiry, Days rounded up to the next midnight UTC", async () => {
    const bucket = await newBucket("lc-hdr");
    const body = lifecycle(
      `<Rule><ID>picture-deletion-rule</ID><Filter><Prefix>pics/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>` +
        `<Rule><ID>later</ID><Filter/><Status>Enabled</Status><Expiration><Days>10</Days></Expiration></Rule>` +
        `<Rule><ID>off</ID><Filter/><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>` +
        `<Rule><ID>big</ID><Filter><ObjectSizeGreaterThan>100</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Date>2020-01-01T00:00:00Z</Date></Expiration></Rule>`,
    );
    expect((await putRules(bucket, body)).status).toBe(200);
    const putR = await put(bucket, "pics/cat.jpg", "meow");
    const head = await send("adminA", { method: "HEAD", bucket, key: "pics/cat.jpg" });
    const lastModified = Date.parse(head.headers.get("last-modified")!);
    // An independent reckoning of AWS's example rule: the day after lastModified + 3 days.
    const day = new Date(lastModified + 3 * DAY);
    const expected = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate() + 1)).toUTCString();
    for (const r of [putR, head, await send("adminA", { method: "GET", bucket, key: "pics/cat.jpg" })]) {
      expect(r.headers.get("x-amz-expiration")).toBe(`expiry-date="${expected}", rule-id="picture-deletion-rule"`);
    }
    // Covered by the 10-day rule only.
    const other = (await put(bucket, "docs/a.txt")).headers.get("x-amz-expiration")!;
    expect(FORMAT.exec(other)?.[2]).toBe("later");
    // The size filter: only objects over 100 bytes; its Date is the earliest.
    const big = await put(bucket, "docs/big.bin", pseudoRandom(101, 1));
    expect(big.headers.get("x-amz-expiration")).toBe(`expiry-date="Wed, 01 Jan 2020 00:00:00 GMT", rule-id="big"`);
  });

  it("absent when no enabled rule covers the object, or the bucket has no rules", async () => {
    const bucket = await newBucket("lc-nohdr");
    expect((await put(bucket, "a")).headers.get("x-amz-expiration")).toBeNull();
    const body = lifecycle(
      `<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>` +
        `<Rule><ID>tagged</ID><Filter><Tag><Key>t</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>` +
        `<Rule><ID>abort</ID><Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`,
    );
    expect((await putRules(bucket, body)).status).toBe(200);
    expect((await put(bucket, "data/b")).headers.get("x-amz-expiration")).toBeNull();
    expect((await send("adminA", { method: "GET", bucket, key: "a" })).headers.get("x-amz-expiration")).toBeNull();
  });
});

describe("the scheduled job (fixed clock)", () => {
  const small: LifecycleBudget = { listPages: 1, pageSize: 2, deletes: 100, multipartDeletes: 10, tagLookups: 500, aborts: 10 };
  const progress = async (bucket: string) =>
    env.DB.prepare("SELECT after_key, pass_started_at, last_pass_at FROM lifecycle_progress WHERE bucket = ?").bind(bucket).first<{ after_key: string | null; pass_started_at: number | null; last_pass_at: number | null }>();

  it("expires objects across several bounded runs, resuming where the last one stopped; objects not covered or not yet due stay", async () => {
    const bucket = await newBucket("lc-job");
    const old = ["old/1", "old/2", "old/3", "old/4", "old/5"];
    for (const k of [...old, "keep/1", "older-not-matching"]) expect((await put(bucket, k)).status).toBe(200);
    expect((await putRules(bucket, lifecycle(`<Rule><ID>old</ID><Filter><Prefix>old/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`))).status).toBe(200);

    // Not yet due: a full pass deletes nothing.
    const early = await runLifecycle(env, Date.now() + 3600 * 1000, { ...small, listPages: 10 });
    expect(early).toMatchObject({ expired: 0, passesFinished: 1 });
    expect(await keys(bucket)).toHaveLength(7);

    // Due (three days on), a page of two per run. The finished pass above waits out the
    // pass interval, so the clock moves on.
    const now = Date.now() + 3 * DAY;
    const runs = [];
    for (let i = 0; i < 10; i++) {
      const r = await runLifecycle(env, now + i * 1000, small);
      runs.push(r);
      if (r.passesFinished > 0) break;
      const p = await progress(bucket);
      expect(p?.pass_started_at).toBe(now);
      expect(p?.after_key).toBe(`${bucket}/${old[2 * i + 1]}`);
    }
    expect(runs.map((r) => r.expired)).toEqual([2, 2, 1]);
    expect(runs.map((r) => r.listed)).toEqual([2, 2, 1]);
    expect(await keys(bucket)).toEqual(["keep/1", "older-not-matching"]);
    expect(await progress(bucket)).toEqual({ after_key: null, pass_started_at: null, last_pass_at: now + 2000 });
    for (const k of old) await expectError(send("adminA", { method: "GET", bucket, key: k }), 404, "NoSuchKey");
  });

  it("the delete budget cuts a page short: the next run resumes after the last object judged, nothing skipped", async () => {
    const bucket = await newBucket("lc-cut");
    const all = ["a/1", "a/2", "a/3", "a/4", "a/5"];
    for (const k of all) expect((await put(bucket, k)).status).toBe(200);
    expect((await putRules(bucket, lifecycle(`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`))).status).toBe(200);
    const now = Date.now() + 3 * DAY;
    const budget: LifecycleBudget = { listPages: 10, pageSize: 10, deletes: 2, multipartDeletes: 10, tagLookups: 500, aborts: 10 };
    expect(await runLifecycle(env, now, budget)).toMatchObject({ listed: 2, expired: 2, passesFinished: 0, budgetExhausted: true });
    expect((await progress(bucket))?.after_key).toBe(`${bucket}/a/2`);
    expect(await runLifecycle(env, now + 1, budget)).toMatchObject({ listed: 2, expired: 2, passesFinished: 0 });
    expect(await runLifecycle(env, now + 2, budget)).toMatchObject({ listed: 1, expired: 1, passesFinished: 1 });
    expect(await keys(bucket)).toEqual([]);
  });

  it("deletes a multipart object as DeleteObject does: gone at once, its part data marked dead and released by the multipart sweep after the grace", async () => {
    const bucket = await newBucket("lc-mpu");
    const o = await multipartPut("adminA", bucket, "old/big", [pseudoRandom(5 * 1024 * 1024, 7), pseudoRandom(10, 8)]);
    expect((await putRules(bucket, lifecycle(`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`))).status).toBe(200);
    const now = Date.now() + 3 * DAY;
    expect(await runLifecycle(env, now)).toMatchObject({ expired: 1, passesFinished: 1 });
    expect(await exists(bucket, "old/big")).toBe(false);
    expect(await traces(o.uploadId)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
    const deadSince = (await env.DB.prepare("SELECT dead_since FROM multipart_objects WHERE upload_id = ?").bind(o.uploadId).first<{ dead_since: number }>())!.dead_since;
    expect(deadSince).toBeGreaterThan(0);
    for (let i = 0; i < 50 && (await runMultipartCleanup(env, deadSince + 61 * 60 * 1000)).sweepDone === false; i++);
    expect(await traces(o.uploadId)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
  });

  it("multipart objects have their own budget: the page ends before the first one over it", async () => {
    const bucket = await newBucket("lc-mpbudget");
    const big = () => [pseudoRandom(5 * 1024 * 1024, 11), pseudoRandom(10, 12)];
    const first = await multipartPut("adminA", bucket, "a/mp", big());
    expect((await put(bucket, "b/plain")).status).toBe(200);
    const second = await multipartPut("adminA", bucket, "c/mp", big());
    expect((await put(bucket, "d/plain")).status).toBe(200);
    expect((await putRules(bucket, lifecycle(`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`))).status).toBe(200);
    const budget: LifecycleBudget = { listPages: 10, pageSize: 10, deletes: 100, multipartDeletes: 1, tagLookups: 500, aborts: 10 };
    const now = Date.now() + 3 * DAY;
    expect(await runLifecycle(env, now, budget)).toMatchObject({ listed: 2, expired: 2, budgetExhausted: true });
    expect(await keys(bucket)).toEqual(["c/mp", "d/plain"]);
    expect((await progress(bucket))?.after_key).toBe(`${bucket}/b/plain`);
    expect(await runLifecycle(env, now + 1, budget)).toMatchObject({ listed: 2, expired: 2, passesFinished: 1 });
    expect(await keys(bucket)).toEqual([]);
    for (const o of [first, second]) expect(await traces(o.uploadId)).toMatchObject({ uploads: 0, parts: 0, objects: 1 });
  });

  it("Date rules expire every covered object once the date has come; size filters select by plaintext size", async () => {
    const bucket = await newBucket("lc-date");
    const tomorrow = Math.floor(Date.now() / DAY) * DAY + DAY;
    expect((await put(bucket, "a/small", "tiny")).status).toBe(200);
    expect((await put(bucket, "a/large", pseudoRandom(2000, 3))).status).toBe(200);
    const date = new Date(tomorrow).toISOString();
    const rules = lifecycle(`<Rule><ID>d</ID><Filter><And><Prefix>a/</Prefix><ObjectSizeGreaterThan>1000</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><Date>${date}</Date></Expiration></Rule>`);
    expect((await putRules(bucket, rules)).status).toBe(200);
    expect(await runLifecycle(env, tomorrow - 1000)).toMatchObject({ expired: 0 });
    expect(await keys(bucket)).toEqual(["a/large", "a/small"]);
    expect(await runLifecycle(env, tomorrow + 2 * 3600 * 1000)).toMatchObject({ expired: 1 });
    expect(await keys(bucket)).toEqual(["a/small"]);
  });

  it("disabled rules delete nothing; a Tag filter expires exactly the objects whose current version carries the tag", async () => {
    const bucket = await newBucket("lc-off");
    const tagged = (key: string, tagging?: string) =>
      send("adminA", { method: "PUT", bucket, key, body: key, headers: tagging ? { "x-amz-tagging": tagging } : {} });
    expect((await tagged("x")).status).toBe(200);
    expect((await tagged("t/match", "k=v&other=1")).status).toBe(200);
    expect((await tagged("t/other-value", "k=w")).status).toBe(200);
    expect((await tagged("t/retagged", "k=v")).status).toBe(200);
    // Overwritten without tags: the tag set of the old version does not carry over.
    expect((await tagged("t/retagged")).status).toBe(200);
    const rules = lifecycle(
      `<Rule><ID>off</ID><Filter/><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>` +
        `<Rule><ID>tag</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`,
    );
    expect((await putRules(bucket, rules)).status).toBe(200);
    expect(await runLifecycle(env, Date.now() + 30 * DAY)).toMatchObject({ expired: 1 });
    expect(await keys(bucket)).toEqual(["t/other-value", "t/retagged", "x"]);
  });

  it("tag lookups are bounded per run: the pass resumes at the object it could not judge", async () => {
    const bucket = await newBucket("lc-tagbudget");
    for (const key of ["a", "b", "c"]) expect((await send("adminA", { method: "PUT", bucket, key, body: key, headers: { "x-amz-tagging": "k=v" } })).status).toBe(200);
    const rules = lifecycle(`<Rule><ID>tag</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`);
    expect((await putRules(bucket, rules)).status).toBe(200);
    const now = Date.now() + 30 * DAY;
    const budget: LifecycleBudget = { listPages: 10, pageSize: 10, deletes: 100, multipartDeletes: 10, tagLookups: 2, aborts: 10 };
    expect(await runLifecycle(env, now, budget)).toMatchObject({ expired: 2, budgetExhausted: true });
    expect(await keys(bucket)).toEqual(["c"]);
    expect(await runLifecycle(env, now + 1000, budget)).toMatchObject({ expired: 1 });
    expect(await keys(bucket)).toEqual([]);
  });

  it("AbortIncompleteMultipartUpload aborts uploads under the prefix once DaysAfterInitiation (rounded up to midnight) have passed", async () => {
    const bucket = await newBucket("lc-abort");
    const due = await createUpload("adminA", bucket, "tmp/a");
    const other = await createUpload("adminA", bucket, "keep/b");
    const rules = lifecycle(`<Rule><ID>a</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`);
    expect((await putRules(bucket, rules)).status).toBe(200);
    const initiated = Date.now();
    const dueAt = Math.floor((initiated + 2 * DAY) / DAY) * DAY + DAY;
    expect(await runLifecycle(env, dueAt - 60 * 1000)).toMatchObject({ aborted: 0 });
    expect((await send("adminA", { method: "GET", bucket, key: "tmp/a", query: { uploadId: due } })).status).toBe(200);
    expect(await runLifecycle(env, dueAt + 60 * 1000)).toMatchObject({ aborted: 1 });
    await expectError(send("adminA", { method: "GET", bucket, key: "tmp/a", query: { uploadId: due } }), 404, "NoSuchUpload");
    expect(await traces(due)).toEqual({ uploads: 0, parts: 0, objects: 0, r2: [] });
    expect((await send("adminA", { method: "GET", bucket, key: "keep/b", query: { uploadId: other } })).status).toBe(200);
  });

  it("starts a new pass over a bucket only once LIFECYCLE_PASS_INTERVAL_MINUTES have passed since the last one ended", async () => {
    const bucket = await newBucket("lc-interval");
    expect((await put(bucket, "a")).status).toBe(200);
    expect((await putRules(bucket, lifecycle(`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`))).status).toBe(200);
    const t = Date.now() + 3 * DAY;
    const tenMinutes = { ...env, LIFECYCLE_PASS_INTERVAL_MINUTES: "10" };
    expect(await runLifecycle(tenMinutes, t)).toMatchObject({ expired: 1, passesFinished: 1 });
    expect((await put(bucket, "b")).status).toBe(200);
    expect(await runLifecycle(tenMinutes, t + 9 * 60 * 1000)).toMatchObject({ listed: 0, expired: 0 });
    expect(await keys(bucket)).toEqual(["b"]);
    expect(await runLifecycle(tenMinutes, t + 11 * 60 * 1000)).toMatchObject({ expired: 1, passesFinished: 1 });
    expect(await keys(bucket)).toEqual([]);
  });

  it("forgets the progress of a bucket whose rules were deleted", async () => {
    const bucket = await newBucket("lc-forget");
    for (const k of ["o/1", "o/2", "o/3"]) expect((await put(bucket, k)).status).toBe(200);
    expect((await putRules(bucket, lifecycle(`<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`))).status).toBe(200);
    await runLifecycle(env, Date.now() + 3 * DAY, { ...small, pageSize: 1 });
    expect((await progress(bucket))?.after_key).toBe(`${bucket}/o/1`);
    expect((await send("adminA", { method: "DELETE", bucket, query: { lifecycle: "" } })).status).toBe(204);
    await runLifecycle(env, Date.now() + 3 * DAY, small);
    expect(await progress(bucket)).toBeNull();
    expect(await keys(bucket)).toEqual(["o/2", "o/3"]);
  });
});
