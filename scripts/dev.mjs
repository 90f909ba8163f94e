// `npm run dev`: a working local S3 endpoint in one command. Generates .dev.vars when
// missing, applies D1 migrations to the local database, starts `wrangler dev`, seeds the
// three local identities and prints them. Extra arguments go to wrangler (e.g. --port 9000).
import { spawn } from "node:child_process";
import { applyMigrations, ensureDevVars, identitiesFrom, localEnv, ROOT, seedIdentities, waitForHttp } from "./lib/local.mjs";

const args = process.argv.slice(2);
const portIndex = args.findIndex((a) => a === "--port" || a.startsWith("--port="));
const port = portIndex < 0 ? 8787 : Number(args[portIndex].includes("=") ? args[portIndex].split("=")[1] : args[portIndex + 1]);
const ip = "127.0.0.1";

const vars = ensureDevVars();
await applyMigrations();

const wranglerArgs = ["dev", "--ip", ip, ...(portIndex < 0 ? ["--port", String(port)] : []), ...args];
const child = spawn("wrangler", wranglerArgs, { cwd: ROOT, stdio: "inherit", env: localEnv() });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));

const endpoint = `http://${ip}:${port}`;
await waitForHttp(endpoint);
const identities = identitiesFrom(vars);
await seedIdentities(endpoint, vars.ADMIN_TOKEN, identities);

const region = vars.REGION || "us-east-1";
// Outside LOCAL_DEV the page refuses to serve without a token (docs/browser-uploads.md).
function pageAccess(v) {
  if (v.UPLOAD_PAGE_TOKEN) return "token required";
  return v.LOCAL_DEV === "true" ? "no token: LOCAL_DEV=true" : "REFUSED: set UPLOAD_PAGE_TOKEN or LOCAL_DEV=true";
}
console.log(`
  S3 endpoint   ${endpoint}   (region ${region})
${vars.UPLOAD_PAGE_ACCESS_KEY_ID ? `  Upload page   ${endpoint}/_upload   (SSE-KMS, as ${vars.UPLOAD_PAGE_ACCESS_KEY_ID}; ${pageAccess(vars)})\n` : ""}  Identities    (override in .dev.vars: LOCAL_ADMIN_A_ACCESS_KEY, LOCAL_ADMIN_A_SECRET, ...)
${identities.map((i) => `    ${i.accessKeyId.padEnd(14)} ${i.secret.padEnd(24)} ${i.role.padEnd(13)} tenant ${i.tenantName} (${i.tenantId})`).join("\n")}

  Try:  AWS_ACCESS_KEY_ID=${identities[0].accessKeyId} AWS_SECRET_ACCESS_KEY=${identities[0].secret} \\
        aws --endpoint-url ${endpoint} s3 mb s3://demo
`);
