#!/usr/bin/env node
// Operator CLI for the gateway's /_admin API (docs/key-lifecycle.md, "Operator CLI").
// Works against local dev (`npm run dev`) and a deployed worker alike:
//   npm run admin -- [--endpoint URL] [--token TOKEN] [--json] <command> [args]
// The token comes from --token, else $ADMIN_TOKEN, else ADMIN_TOKEN in .dev.vars.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DEV_VARS, parseDevVars } from "./lib/local.mjs";

const USAGE = `usage: npm run admin -- [--endpoint URL] [--token TOKEN] [--json] <command>

identities
  tenants list
  tenants create <name> [--id <32 lowercase letters/digits>]
  tenants public-access-block <tenant> [on|off|default|Setting=true|false ...]
                                            Block Public Access of the tenant's NEW buckets (shown without
                                            an argument); on = all four (the default), off = none
  users list <tenant>                       (tenant: id or name)
  users create <tenant> <user> [--role tenant_admin|member]
  keys list <tenant> <user>
  keys create <tenant> <user>               prints the new secret once
  keys rotate <tenant> <user> [<old-id>]    new key, then the old one(s) set Inactive
  keys revoke <access-key-id> [--delete]    Inactive (or deleted)
  keys activate <access-key-id>

master secrets
  master status                             objects / access keys per master version, removable secrets
  rewrap run [--watch] [--batch N]          start (or continue) a rewrap pass; --watch follows it to the end
  rewrap status                             the latest pass and its failures
  rewrap cancel
  rewrap failures <pass-id>

encryption audit
  audit <bucket> [--deep] [--all]           exit status 1 when any object is not readable
  audit --every-bucket [--deep]

keys (KMS)
  kms lifecycle                             destroy keys whose deletion window ended, rotate due keys now
  kms external create <tenant> --kms-endpoint URL --kms-region R --external-key-id ID
        [--access-key-id A (secret from $EXTERNAL_KMS_SECRET_ACCESS_KEY) | --credentials-secret NAME]
        [--description D]                   a CMK of the tenant rooted in a key of an external AWS-KMS-protocol
                                            KMS (README, "Keys rooted in your KMS"); credentials are sealed under
                                            the master secret, or read from Worker secrets NAME_ACCESS_KEY_ID /
                                            NAME_SECRET_ACCESS_KEY
  kms external show <key-id>                the binding (never the credentials)
  kms external credentials <key-id> [--access-key-id A (secret from $EXTERNAL_KMS_SECRET_ACCESS_KEY)
        | --credentials-secret NAME]        replace them (checked against the external KMS first)
  kms external calls                        external KMS calls made by the answering isolate

options: --endpoint (default $ADMIN_ENDPOINT or http://127.0.0.1:8787), --token, --json`;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    endpoint: { type: "string" },
    token: { type: "string" },
    json: { type: "boolean", default: false },
    id: { type: "string" },
    role: { type: "string", default: "member" },
    delete: { type: "boolean", default: false },
    watch: { type: "boolean", default: false },
    batch: { type: "string", default: "1000" },
    deep: { type: "boolean", default: false },
    all: { type: "boolean", default: false },
    "every-bucket": { type: "boolean", default: false },
    "kms-endpoint": { type: "string" },
    "kms-region": { type: "string" },
    "external-key-id": { type: "string" },
    "access-key-id": { type: "string" },
    "credentials-secret": { type: "string" },
    description: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

class CliError extends Error {}

const endpoint = (opts.endpoint ?? process.env.ADMIN_ENDPOINT ?? "http://127.0.0.1:8787").replace(/\/+$/, "");

function adminToken() {
  if (opts.token) return opts.token;
  if (process.env.ADMIN_TOKEN) return process.env.ADMIN_TOKEN;
  if (existsSync(DEV_VARS)) {
    const vars = parseDevVars(readFileSync(DEV_VARS, "utf8"));
    if (vars.ADMIN_TOKEN) return vars.ADMIN_TOKEN;
  }
  throw new CliError("no admin token: pass --token, set ADMIN_TOKEN, or run `npm run dev` once to create .dev.vars");
}

async function api(method, path, body) {
  let res;
  try {
    res = await fetch(`${endpoint}/_admin${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken()}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    throw new CliError(`cannot reach ${endpoint}: ${error.cause?.message ?? error.message}`);
  }
  const text = await res.text();
  let json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { error: text.slice(0, 200) };
  }
  if (!res.ok) throw new CliError(`${method} /_admin${path}: HTTP ${res.status}${json.error ? ` — ${json.error}` : ""}`);
  return json;
}

const out = (value, human) => {
  if (opts.json) console.log(JSON.stringify(value, null, 2));
  else human(value);
};

function table(rows, columns) {
  if (rows.length === 0) return console.log("(none)");
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? "").length)));
  const line = (cells) => cells.map((v, i) => String(v ?? "").padEnd(widths[i])).join("  ").trimEnd();
  console.log(line(columns));
  for (const r of rows) console.log(line(columns.map((c) => r[c])));
}

const iso = (ms) => (ms ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z") : "");
const need = (value, what) => {
  if (value === undefined) throw new CliError(`missing ${what}\n\n${USAGE}`);
  return value;
};

/** Accepts a tenant id or a tenant name. */
async function tenantId(ref) {
  need(ref, "<tenant>");
  if (/^[a-z0-9]{32}$/.test(ref)) return ref;
  const { tenants } = await api("GET", "/tenants");
  const match = tenants.find((t) => t.name === ref);
  if (!match) throw new CliError(`no tenant named '${ref}'`);
  return match.id;
}

const enc = encodeURIComponent;

// ---- identities ---------------------------------------------------------------------

const PAB_FIELDS = ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"];

async function publicAccessBlock(tenant, settings) {
  const id = await tenantId(tenant);
  const path = `/tenants/${id}/public-access-block`;
  const show = (r) => {
    for (const f of PAB_FIELDS) console.log(`${f.padEnd(22)} ${r.publicAccessBlock[f]}`);
    if (r.isDefault) console.log("(the default: no tenant setting)");
  };
  if (settings.length === 0) return out(await api("GET", path), show);
  if (settings.length === 1 && settings[0] === "default") {
    await api("DELETE", path);
    return out(await api("GET", path), show);
  }
  let config = (await api("GET", path)).publicAccessBlock;
  for (const s of settings) {
    if (s === "on" || s === "off") {
      config = Object.fromEntries(PAB_FIELDS.map((f) => [f, s === "on"]));
      continue;
    }
    const m = /^(\w+)=(true|false)$/.exec(s);
    if (!m || !PAB_FIELDS.includes(m[1])) throw new CliError(`expected on, off, default or one of ${PAB_FIELDS.join(", ")}=true|false; got '${s}'`);
    config[m[1]] = m[2] === "true";
  }
  return out(await api("PUT", path, config), show);
}

async function tenants([sub, name, ...rest]) {
  if (sub === "public-access-block") return publicAccessBlock(name, rest);
  if (sub === "list") return out(await api("GET", "/tenants"), (r) => table(r.tenants.map((t) => ({ id: t.id, name: t.name, created: iso(t.createdAt) })), ["id", "name", "created"]));
  if (sub === "create") {
    need(name, "<name>");
    // Names are unique: re-running the command reports the tenant instead of failing.
    const { tenants: known } = await api("GET", "/tenants");
    const same = known.find((t) => t.name === name);
    if (same && (!opts.id || opts.id === same.id)) return out({ tenant: same, created: false }, () => console.log(`exists: tenant ${same.id} (${same.name})`));
    if (same) throw new CliError(`a tenant named '${name}' already exists with id ${same.id}`);
    const id = opts.id ?? randomBytes(16).toString("hex");
    const r = await api("PUT", `/tenants/${enc(id)}`, { name });
    return out(r, () => console.log(`${r.created ? "created" : "exists"}: tenant ${r.tenant.id} (${r.tenant.name})`));
  }
  throw new CliError(USAGE);
}

async function users([sub, tenant, user]) {
  const id = await tenantId(tenant);
  if (sub === "list") return out(await api("GET", `/tenants/${id}/users`), (r) => table(r.users.map((u) => ({ user: u.name, role: u.role, id: u.id, created: iso(u.createdAt) })), ["user", "role", "id", "created"]));
  if (sub === "create") {
    need(user, "<user>");
    if (opts.role !== "tenant_admin" && opts.role !== "member") throw new CliError("--role must be tenant_admin or member");
    const r = await api("PUT", `/tenants/${id}/users/${enc(user)}`, { role: opts.role });
    return out(r, () => console.log(`${r.created ? "created" : "exists"}: ${r.user.name} (${r.user.role}) in tenant ${id}${!r.created && r.user.role !== opts.role ? ` — role unchanged: ${r.user.role}` : ""}`));
  }
  throw new CliError(USAGE);
}

async function keys([sub, a, b, c]) {
  if (sub === "revoke" || sub === "activate") {
    need(a, "<access-key-id>");
    if (sub === "revoke" && opts.delete) {
      await api("DELETE", `/access-keys/${enc(a)}`);
      return out({ accessKeyId: a, deleted: true }, () => console.log(`deleted: ${a}`));
    }
    const r = await api("PUT", `/access-keys/${enc(a)}/status`, { status: sub === "revoke" ? "Inactive" : "Active" });
    return out(r, () => console.log(`${r.accessKeyId}: ${r.status}`));
  }
  const id = await tenantId(a);
  need(b, "<user>");
  const path = `/tenants/${id}/users/${enc(b)}/access-keys`;
  if (sub === "list") {
    return out(await api("GET", path), (r) => table(r.accessKeys.map((k) => ({ accessKeyId: k.accessKeyId, status: k.status, masterVersion: k.masterVersion, created: iso(k.createdAt) })), ["accessKeyId", "status", "masterVersion", "created"]));
  }
  if (sub === "create") {
    const r = await api("POST", path, {});
    return out(r, () => printSecret(r));
  }
  if (sub === "rotate") {
    // Create first, then deactivate: there is never a moment without a working key.
    const before = (await api("GET", path)).accessKeys.filter((k) => k.status === "Active");
    const old = c ? before.filter((k) => k.accessKeyId === c) : before;
    if (c && old.length === 0) throw new CliError(`${c} is not an active key of ${b}`);
    const created = await api("POST", path, {});
    for (const k of old) await api("PUT", `/access-keys/${enc(k.accessKeyId)}/status`, { status: "Inactive" });
    return out({ ...created, deactivated: old.map((k) => k.accessKeyId) }, () => {
      printSecret(created);
      console.log(`deactivated: ${old.map((k) => k.accessKeyId).join(", ") || "(none)"} — delete with \`keys revoke <id> --delete\` once clients have switched`);
    });
  }
  throw new CliError(USAGE);
}

function printSecret(r) {
  console.log(`AccessKeyId:     ${r.accessKeyId}`);
  console.log(`SecretAccessKey: ${r.secret}`);
  console.log("(the secret is shown only now; it is stored sealed under the master secret)");
}

// ---- master secrets -----------------------------------------------------------------

async function master([sub]) {
  if (sub !== "status") throw new CliError(USAGE);
  out(await api("GET", "/master/status"), (s) => {
    console.log(`write version: v${s.writeVersion}; configured: ${s.configuredVersions.map((v) => `v${v}`).join(", ")}`);
    if (s.evidence) console.log(`object counts from rewrap pass #${s.evidence.id} (to v${s.evidence.targetVersion}), finished ${iso(s.evidence.finishedAt)}`);
    else console.log(`no completed rewrap pass to v${s.writeVersion} yet: object counts unknown (run \`npm run admin -- rewrap run --watch\`)`);
    if (s.running) console.log(`running: pass #${s.running.id}, ${s.running.scanned} objects visited so far`);
    table(
      s.versions.map((v) => ({
        version: `v${v.version}${v.write ? " (write)" : ""}`,
        configured: v.configured ? "yes" : "no",
        objects: v.objects ?? "?",
        unreadable: v.unreadableObjects ?? "?",
        accessKeys: v.accessKeys,
        uploads: v.multipartUploads ?? "?",
        removable: v.removable ? "YES" : "no",
        why: v.reason,
      })),
      ["version", "configured", "objects", "unreadable", "accessKeys", "uploads", "removable", "why"],
    );
  });
}

function progressLine(p, rate) {
  return `pass #${p.id} → v${p.targetVersion} [${p.status}] visited ${p.scanned}: rewrapped ${p.rewrapped}, already current ${p.current}, conflicts ${p.conflicts}, failed ${p.failed}${rate ? ` (${rate} objects/s)` : ""}`;
}

async function rewrap([sub, arg]) {
  if (sub === "run") {
    const batch = Number(opts.batch);
    if (!Number.isInteger(batch) || batch < 1 || batch > 10000) throw new CliError("--batch must be 1-10000");
    let first = true;
    const started = Date.now();
    let visited = 0;
    for (;;) {
      const r = await api("POST", "/master/rewrap", { start: first, maxObjects: batch, maxSeconds: 20 });
      first = false;
      visited += r.visited;
      const rate = Math.round(visited / Math.max(0.001, (Date.now() - started) / 1000));
      if (opts.json) console.log(JSON.stringify(r));
      else if (r.outcome === "busy") console.log(`pass #${r.pass?.id} is being worked on by another runner (the cron?); waiting…`);
      else if (r.pass) console.log(progressLine(r.pass, rate));
      if (r.outcome === "completed") {
        if (!opts.json) {
          console.log(`completed; access-key secrets re-sealed: ${r.resealedAccessKeys}`);
          if (r.pass.failed > 0) console.log(`${r.pass.failed} object(s) could not be moved: \`npm run admin -- rewrap failures ${r.pass.id}\``);
          console.log("next: `npm run admin -- master status`");
        }
        return;
      }
      if (r.outcome === "idle" || r.outcome === "cancelled") {
        if (!opts.json) console.log(r.outcome === "idle" ? "no pass is running" : "the pass was cancelled (the write version changed); run again to start a new one");
        return;
      }
      if (!opts.watch) {
        if (!opts.json) console.log("pass continues in the background (cron) — follow it with `rewrap run --watch`");
        return;
      }
      if (r.outcome === "busy") await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  if (sub === "status") {
    return out(await api("GET", "/master/rewrap"), (r) => {
      console.log(`write version: v${r.targetVersion}`);
      if (!r.latest) return console.log("no rewrap pass has run yet");
      console.log(progressLine(r.latest));
      console.log(`started ${iso(r.latest.startedAt)} by ${r.latest.startedBy}${r.latest.finishedAt ? `, finished ${iso(r.latest.finishedAt)}` : ""}`);
      printFailures(r.failures);
    });
  }
  if (sub === "cancel") return out(await api("POST", "/master/rewrap/cancel"), (r) => console.log(`cancelled pass #${r.cancelled.id}`));
  if (sub === "failures") {
    need(arg, "<pass-id>");
    const all = [];
    let after;
    do {
      const r = await api("GET", `/master/rewrap/${enc(arg)}/failures?limit=1000${after ? `&after=${enc(after)}` : ""}`);
      all.push(...r.failures);
      after = r.next;
    } while (after);
    return out({ failures: all }, () => printFailures(all));
  }
  throw new CliError(USAGE);
}

function printFailures(failures) {
  if (failures.length === 0) return console.log("failures: none");
  console.log(`failures (${failures.length}${failures.length === 100 ? "+" : ""}):`);
  table(failures.map((f) => ({ object: f.r2Key, version: f.masterVersion ?? "?", reason: f.reason, blocks: f.blocking ? "YES" : "no", detail: f.detail })), ["object", "version", "reason", "blocks", "detail"]);
}

// ---- audit --------------------------------------------------------------------------

async function auditBucket(bucket) {
  const total = { bucket, scanned: 0, readable: 0, macVerified: 0, deepVerified: 0, byMode: {}, byKey: {}, byMasterVersion: {}, problems: [], pages: 0 };
  let cursor;
  do {
    const q = new URLSearchParams();
    if (cursor) q.set("cursor", cursor);
    if (opts.deep) q.set("deep", "1");
    const page = await api("GET", `/buckets/${enc(bucket)}/audit${q.size > 0 ? `?${q}` : ""}`);
    total.tenantId = page.tenantId;
    total.pages++;
    for (const k of ["scanned", "readable", "macVerified", "deepVerified"]) total[k] += page[k];
    for (const [m, n] of Object.entries(page.byMode)) total.byMode[m] = (total.byMode[m] ?? 0) + n;
    for (const [v, n] of Object.entries(page.byMasterVersion)) total.byMasterVersion[v] = (total.byMasterVersion[v] ?? 0) + n;
    for (const [arn, use] of Object.entries(page.byKey)) total.byKey[arn] = { ...use, objects: (total.byKey[arn]?.objects ?? 0) + use.objects };
    total.problems.push(...page.problems);
    cursor = page.cursor;
    if (!opts.json && process.stderr.isTTY) process.stderr.write(`\r${bucket}: ${total.scanned} objects audited…`);
  } while (cursor);
  if (!opts.json && process.stderr.isTTY) process.stderr.write("\r\x1b[K");
  return total;
}

function printAudit(a) {
  console.log(`bucket ${a.bucket} (tenant ${a.tenantId}): ${a.scanned} objects, ${a.readable} readable, ${a.scanned - a.readable} not readable`);
  console.log(`metadata MAC verified: ${a.macVerified}/${a.scanned}${opts.deep ? `; bodies decrypted and verified: ${a.deepVerified}` : " (bodies not decrypted; add --deep)"}`);
  console.log(`by encryption mode: ${Object.entries(a.byMode).map(([m, n]) => `${m === "AES256" ? "SSE-S3 (AES256)" : m === "aws:kms" ? "SSE-KMS (aws:kms)" : m} ${n}`).join(", ") || "-"}`);
  console.log(`by master version:  ${Object.entries(a.byMasterVersion).map(([v, n]) => `v${v} ${n}`).join(", ") || "-"}`);
  console.log("by key:");
  table(Object.entries(a.byKey).map(([arn, u]) => ({ key: arn, kind: u.kind === "service" ? "SSE-S3 service" : u.kind === "default" ? "aws/s3 default" : u.kind, state: u.state + (u.deletionDate ? ` (deleted ${u.deletionDate})` : ""), objects: u.objects })), ["key", "kind", "state", "objects"]);
  if (a.problems.length === 0) return console.log("every object is readable");
  const byReason = new Map();
  for (const p of a.problems) byReason.set(p.reason, [...(byReason.get(p.reason) ?? []), p]);
  console.log(`NOT READABLE (${a.problems.length}):`);
  for (const [reason, list] of byReason) {
    console.log(`  ${reason}: ${list.length}`);
    for (const p of opts.all ? list : list.slice(0, 20)) console.log(`    ${p.key} — ${p.detail}`);
    if (!opts.all && list.length > 20) console.log(`    … ${list.length - 20} more (--all lists every one)`);
  }
}

async function audit([bucket]) {
  const buckets = opts["every-bucket"] ? (await api("GET", "/buckets")).buckets.map((b) => b.name) : [need(bucket, "<bucket>")];
  if (buckets.length === 0 && !opts.json) console.log("no buckets");
  let problems = 0;
  const reports = [];
  for (const name of buckets) {
    const report = await auditBucket(name);
    problems += report.problems.length;
    reports.push(report);
    if (!opts.json) {
      printAudit(report);
      console.log();
    }
  }
  if (opts.json) console.log(JSON.stringify(opts["every-bucket"] ? reports : reports[0], null, 2));
  if (problems > 0) process.exitCode = 1;
}

async function kmsCommand([sub, ...rest]) {
  if (sub === "external") return externalKey(rest);
  if (sub !== "lifecycle") throw new CliError(USAGE);
  out(await api("POST", "/kms/lifecycle"), (r) => console.log(`destroyed: ${r.destroyed.join(", ") || "(none)"}\nrotated: ${r.rotated.join(", ") || "(none)"}`));
}

const showBinding = (r) => {
  console.log(`key         ${r.arn}`);
  console.log(`external    ${r.external.externalKeyId} at ${r.external.endpoint} (${r.external.region})`);
  console.log(`store id    ${r.external.customKeyStoreId}`);
  console.log(`credentials ${r.external.credentials === "sealed" ? "sealed under the master secret in D1" : `Worker secrets ${r.external.credentials.slice(7)}_*`}`);
};

async function externalKey([sub, arg]) {
  if (sub === "calls") return out(await api("GET", "/kms/external/calls"), (r) => table(Object.entries(r.calls).map(([operation, calls]) => ({ operation, calls })), ["operation", "calls"]));
  if (sub === "show") return out(await api("GET", `/kms/keys/${enc(need(arg, "<key-id>"))}/external`), showBinding);
  if (sub === "credentials") return out(await api("PUT", `/kms/keys/${enc(need(arg, "<key-id>"))}/external/credentials`, credentialsBody()), showBinding);
  if (sub !== "create") throw new CliError(USAGE);
  const body = {
    endpoint: need(opts["kms-endpoint"], "--kms-endpoint"),
    region: need(opts["kms-region"], "--kms-region"),
    externalKeyId: need(opts["external-key-id"], "--external-key-id"),
    ...(opts.description !== undefined ? { description: opts.description } : {}),
    ...credentialsBody(),
  };
  out(await api("POST", `/tenants/${await tenantId(arg)}/external-keys`, body), showBinding);
}

function credentialsBody() {
  if (opts["credentials-secret"] !== undefined) return { credentialsSecret: opts["credentials-secret"] };
  // The secret comes from the environment, never the command line (visible in ps, shell history).
  return {
    accessKeyId: need(opts["access-key-id"], "--access-key-id (or --credentials-secret)"),
    secretAccessKey: need(process.env.EXTERNAL_KMS_SECRET_ACCESS_KEY || undefined, "$EXTERNAL_KMS_SECRET_ACCESS_KEY"),
  };
}

const commands = { tenants, users, keys, master, rewrap, audit, kms: kmsCommand };

try {
  const [command, ...rest] = positionals;
  if (opts.help || !command) {
    console.log(USAGE);
  } else if (!commands[command]) {
    throw new CliError(`unknown command '${command}'\n\n${USAGE}`);
  } else {
    await commands[command](rest);
  }
} catch (error) {
  if (error instanceof CliError) {
    console.error(error.message);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
