// `npm run dev`: a working local S3 endpoint in one command. Generates .dev.vars when
// missing, applies D1 migrations to the local database, starts `wrangler dev`, seeds the
// three local identities and prints them. Arguments after `--` go to wrangler unchanged
// (e.g. --ip 0.0.0.0 --port 9000); 127.0.0.1:8787 when none are given (lib/dev-cli.mjs).
import { spawn } from "node:child_process";
import { devArgs, devBanner } from "./lib/dev-cli.mjs";
import { applyMigrations, ensureDevVars, identitiesFrom, localEnv, ROOT, seedIdentities, waitForHttp } from "./lib/local.mjs";

const { wranglerArgs, endpoint, persistTo } = devArgs(process.argv.slice(2));

const vars = ensureDevVars();
// The same local D1 wrangler will use (its default, or the user's --persist-to).
await applyMigrations(persistTo);

const child = spawn("wrangler", wranglerArgs, { cwd: ROOT, stdio: "inherit", env: localEnv() });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));

await waitForHttp(endpoint);
const identities = identitiesFrom(vars);
await seedIdentities(endpoint, vars.ADMIN_TOKEN, identities);

// Outside LOCAL_DEV the page refuses to serve without a token (docs/browser-uploads.md).
function pageAccess(v) {
  if (v.UPLOAD_PAGE_TOKEN) return "token required";
  return v.LOCAL_DEV === "true" ? "no token: LOCAL_DEV=true" : "REFUSED: set UPLOAD_PAGE_TOKEN or LOCAL_DEV=true";
}
console.log(devBanner({ endpoint, region: vars.REGION || "us-east-1", identities, uploadPageKey: vars.UPLOAD_PAGE_ACCESS_KEY_ID, uploadPageAccess: pageAccess(vars), persistTo }));
