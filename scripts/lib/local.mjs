// Local development helpers shared by `npm run dev`, the e2e test harness and the benchmarks.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const DEV_VARS = `${ROOT}/.dev.vars`;

/** The three fixed local identities (README "Local identities"); .dev.vars may override them. */
export const DEFAULT_IDENTITIES = [
  { role: "tenant_admin", tenantId: "000000000000000000000000000000aa", tenantName: "tenant-a", user: "admin-a", accessKeyId: "LOCALADMINA", secret: "local-admin-a-secret", env: "LOCAL_ADMIN_A" },
  { role: "member", tenantId: "000000000000000000000000000000aa", tenantName: "tenant-a", user: "member-a", accessKeyId: "LOCALMEMBERA", secret: "local-member-a-secret", env: "LOCAL_MEMBER_A" },
  { role: "tenant_admin", tenantId: "000000000000000000000000000000bb", tenantName: "tenant-b", user: "admin-b", accessKeyId: "LOCALADMINB", secret: "local-admin-b-secret", env: "LOCAL_ADMIN_B" },
];

export function parseDevVars(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    vars[m[1]] = m[2].replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

/**
 * Creates .dev.vars with a fresh random master secret and admin token when missing, and
 * adds either if an existing file lacks it. Never overwrites a value that is there.
 */
export function ensureDevVars(path = DEV_VARS) {
  const existing = existsSync(path) ? readFileSync(path, "utf8") : "";
  const vars = parseDevVars(existing);
  const additions = [];
  if (!Object.keys(vars).some((k) => /^MASTER_KEY_V\d+$/.test(k))) {
    additions.push("# Local master secret (base64, 32 bytes). Generated once; losing it makes local objects unreadable.");
    additions.push(`MASTER_KEY_V1=${randomBytes(32).toString("base64")}`);
  }
  if (!vars.ADMIN_TOKEN) additions.push(`ADMIN_TOKEN=${randomBytes(24).toString("hex")}`);
  if (!("REQUIRE_TLS_FOR_SSE" in vars) && !("REQUIRE_TLS_FOR_SSE_KMS" in vars)) {
    additions.push("# Local dev serves plain HTTP; deployed workers keep the TLS requirement for SSE-KMS and SSE-C.");
    additions.push("REQUIRE_TLS_FOR_SSE=false");
  }
  if (!("LOCAL_DEV" in vars)) {
    additions.push("# Local development only (never set on a deployed worker): the upload page may run without UPLOAD_PAGE_TOKEN.");
    additions.push("LOCAL_DEV=true");
  }
  if (!("UPLOAD_PAGE_ACCESS_KEY_ID" in vars)) {
    additions.push("# Browser upload page at /_upload (docs/browser-uploads.md): uploads act as this access key's user.");
    additions.push(`UPLOAD_PAGE_ACCESS_KEY_ID=${vars.LOCAL_ADMIN_A_ACCESS_KEY || "LOCALADMINA"}`);
  }
  if (additions.length > 0) {
    const text = (existing && !existing.endsWith("\n") ? existing + "\n" : existing) + additions.join("\n") + "\n";
    writeFileSync(path, text, { mode: 0o600 });
  }
  return parseDevVars(readFileSync(path, "utf8"));
}

export function identitiesFrom(vars) {
  return DEFAULT_IDENTITIES.map((id) => ({
    ...id,
    accessKeyId: vars[`${id.env}_ACCESS_KEY`] || id.accessKeyId,
    secret: vars[`${id.env}_SECRET`] || id.secret,
  }));
}

/** Idempotently creates the tenants, users and access keys through the admin API. */
export async function seedIdentities(endpoint, adminToken, identities) {
  const call = async (method, path, body) => {
    const res = await fetch(new URL(`/_admin${path}`, endpoint), {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  for (const id of identities) {
    await call("PUT", `/tenants/${id.tenantId}`, { name: id.tenantName });
    await call("PUT", `/tenants/${id.tenantId}/users/${id.user}`, { role: id.role });
    await call("POST", `/tenants/${id.tenantId}/users/${id.user}/access-keys`, { accessKeyId: id.accessKeyId, secret: id.secret });
  }
}

/** Runs a command with node_modules/.bin first on PATH (so wrangler runs on Node 22). */
export function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      stdio: options.stdio ?? "inherit",
      env: localEnv(options.env),
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} exited with ${code}`))));
  });
}

export function localEnv(extra = {}) {
  return {
    ...process.env,
    PATH: `${ROOT}/node_modules/.bin:${process.env.PATH}`,
    // No network here: don't fetch the Request.cf fixture or send telemetry.
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_SEND_METRICS: "false",
    ...extra,
  };
}

export async function applyMigrations(persistTo) {
  const args = ["d1", "migrations", "apply", "DB", "--local"];
  if (persistTo) args.push("--persist-to", persistTo);
  await run("wrangler", args, { stdio: ["ignore", "ignore", "inherit"], env: { CI: "1" } });
}

export async function waitForHttp(url, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
