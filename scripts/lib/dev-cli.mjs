// `npm run dev` without side effects (unit-tested in test/e2e/dev-cli.test.ts): its arguments
// and its banner. Everything the user types after `npm run dev --` goes to `wrangler dev`
// unchanged; only the listening address is defaulted (127.0.0.1:8787) when the user gave
// none, since wrangler refuses a flag given twice ("--ip expects a single value").

export const DEFAULT_IP = "127.0.0.1";
export const DEFAULT_PORT = 8787;

/**
 * The value of `--name v` or `--name=v` in argv (the last one, as yargs keeps for a
 * repeated flag; wrangler refuses repeats anyway), or undefined when absent.
 */
export function flagValue(argv, name) {
  let value;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") break;
    if (arg === `--${name}`) value = argv[i + 1] ?? "";
    else if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
  }
  return value;
}

/** Host part of a URL for an address wrangler listens on: a wildcard is reached on loopback. */
function urlHost(ip) {
  if (ip === "0.0.0.0" || ip === "*") return "127.0.0.1";
  if (ip === "::" || ip === "[::]") return "[::1]";
  if (ip.includes(":") && !ip.startsWith("[")) return `[${ip}]`;
  return ip;
}

/**
 * @param {string[]} argv what followed `npm run dev --`
 * @returns {{ wranglerArgs: string[], ip: string, port: number, endpoint: string, persistTo: string | undefined }}
 */
export function devArgs(argv) {
  const userIp = flagValue(argv, "ip");
  const userPort = flagValue(argv, "port");
  if (userIp === "") throw new Error("--ip: an address is missing");
  const ip = userIp ?? DEFAULT_IP;
  const port = userPort === undefined ? DEFAULT_PORT : Number(userPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port: not a port number: ${userPort}`);
  const wranglerArgs = ["dev", ...(userIp === undefined ? ["--ip", ip] : []), ...(userPort === undefined ? ["--port", String(port)] : []), ...argv];
  return { wranglerArgs, ip, port, endpoint: `http://${urlHost(ip)}:${port}`, persistTo: flagValue(argv, "persist-to") };
}

/**
 * What `npm run dev` prints once the endpoint answers: what this is, where, which keys,
 * and one thing to try. A newcomer reads this before any document.
 * @param {{ endpoint: string, region: string, identities: { accessKeyId: string, secret: string, role: string, tenantName: string, tenantId: string }[], uploadPageKey?: string, persistTo?: string }} o
 */
export function devBanner({ endpoint, region, identities, uploadPageKey, uploadPageAccess, persistTo }) {
  const [first] = identities;
  const rows = identities.map((i) => `    ${i.accessKeyId.padEnd(14)} ${i.secret.padEnd(24)} ${i.role.padEnd(13)} ${i.tenantName} (${i.tenantId})`);
  return [
    "",
    "  S3 SSE-KMS gateway for R2 (local): an S3 endpoint that encrypts every object it stores.",
    "",
    `  S3 endpoint   ${endpoint}   region ${region}, path-style`,
    ...(uploadPageKey ? [`  Upload page   ${endpoint}/_upload   (browser upload with SSE-KMS, as ${uploadPageKey}${uploadPageAccess ? `; ${uploadPageAccess}` : ""})`] : []),
    "  Access keys   (override in .dev.vars: LOCAL_ADMIN_A_ACCESS_KEY, LOCAL_ADMIN_A_SECRET, ...)",
    `    ${"access key".padEnd(14)} ${"secret".padEnd(24)} ${"role".padEnd(13)} tenant`,
    ...rows,
    "    Only a tenant_admin may use SSE-KMS; every object is encrypted either way.",
    "",
    "  Try it (aws-cli; rclone, s3cmd, boto3 and the SDKs work the same way, see README):",
    `    export AWS_ACCESS_KEY_ID=${first.accessKeyId} AWS_SECRET_ACCESS_KEY=${first.secret} AWS_DEFAULT_REGION=${region}`,
    `    aws --endpoint-url ${endpoint} s3 mb s3://demo`,
    `    aws --endpoint-url ${endpoint} s3 cp README.md s3://demo/ --sse aws:kms`,
    "",
    `  Local R2 and D1 live in ${persistTo ?? ".wrangler/state"}; Ctrl-C stops.`,
    "",
  ].join("\n");
}
