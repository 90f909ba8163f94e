import { describe, expect, it } from "vitest";
// @ts-expect-error plain ESM helper of scripts/dev.mjs
import { devArgs, devBanner, flagValue } from "../../scripts/lib/dev-cli.mjs";

/**
 * `npm run dev -- <args>`: what reaches `wrangler dev` and which endpoint the banner and
 * the seeding use. Pure functions; no worker is started here.
 */
interface DevArgs {
  wranglerArgs: string[];
  ip: string;
  port: number;
  endpoint: string;
  persistTo: string | undefined;
}
const parse = devArgs as (argv: string[]) => DevArgs;

describe("npm run dev arguments", () => {
  it("no arguments: 127.0.0.1:8787", () => {
    expect(parse([])).toEqual({ wranglerArgs: ["dev", "--ip", "127.0.0.1", "--port", "8787"], ip: "127.0.0.1", port: 8787, endpoint: "http://127.0.0.1:8787", persistTo: undefined });
  });

  it.each([
    [["--ip", "127.0.0.1"], ["dev", "--port", "8787", "--ip", "127.0.0.1"], "http://127.0.0.1:8787"],
    [["--ip=10.1.2.3"], ["dev", "--port", "8787", "--ip=10.1.2.3"], "http://10.1.2.3:8787"],
    [["--port", "9123"], ["dev", "--ip", "127.0.0.1", "--port", "9123"], "http://127.0.0.1:9123"],
    [["--port=9000"], ["dev", "--ip", "127.0.0.1", "--port=9000"], "http://127.0.0.1:9000"],
    [["--ip", "127.0.0.1", "--port", "9123"], ["dev", "--ip", "127.0.0.1", "--port", "9123"], "http://127.0.0.1:9123"],
    [["--port=9123", "--ip=127.0.0.2"], ["dev", "--port=9123", "--ip=127.0.0.2"], "http://127.0.0.2:9123"],
  ])("%j: the user's --ip/--port are passed once, not duplicated", (argv, wrangler, endpoint) => {
    const r = parse(argv);
    expect(r.wranglerArgs).toEqual(wrangler);
    expect(r.wranglerArgs.filter((a) => a === "--ip" || a.startsWith("--ip=")).length).toBe(1);
    expect(r.wranglerArgs.filter((a) => a === "--port" || a.startsWith("--port=")).length).toBe(1);
    expect(r.endpoint).toBe(endpoint);
  });

  it("a wildcard address is reached on loopback; IPv6 gets brackets", () => {
    expect(parse(["--ip", "0.0.0.0"]).endpoint).toBe("http://127.0.0.1:8787");
    expect(parse(["--ip", "::"]).endpoint).toBe("http://[::1]:8787");
    expect(parse(["--ip", "::1", "--port", "9000"]).endpoint).toBe("http://[::1]:9000");
    expect(parse(["--ip", "localhost"]).endpoint).toBe("http://localhost:8787");
  });

  it("other wrangler flags pass through in order; --persist-to is where migrations go too", () => {
    const r = parse(["--var", "REGION:eu-west-1", "--persist-to", "/tmp/state", "--log-level=debug", "--live-reload"]);
    expect(r.wranglerArgs).toEqual(["dev", "--ip", "127.0.0.1", "--port", "8787", "--var", "REGION:eu-west-1", "--persist-to", "/tmp/state", "--log-level=debug", "--live-reload"]);
    expect(r.persistTo).toBe("/tmp/state");
    expect(parse(["--persist-to=/x"]).persistTo).toBe("/x");
  });

  it("flag values: last one wins, nothing after `--`, prefixes are not the flag", () => {
    expect(flagValue(["--port", "1", "--port=2"], "port")).toBe("2");
    expect(flagValue(["--", "--port", "1"], "port")).toBeUndefined();
    expect(flagValue(["--ports", "1", "--ipv6"], "port")).toBeUndefined();
    expect(flagValue(["--ipv6"], "ip")).toBeUndefined();
  });

  it("a port that is not one, or --ip without an address, is refused before wrangler starts", () => {
    expect(() => parse(["--port", "http"])).toThrow(/--port/);
    expect(() => parse(["--port=70000"])).toThrow(/--port/);
    expect(() => parse(["--port"])).toThrow(/--port/);
    expect(() => parse(["--ip"])).toThrow(/--ip/);
  });
});

describe("npm run dev banner", () => {
  const identities = [
    { accessKeyId: "LOCALADMINA", secret: "local-admin-a-secret", role: "tenant_admin", tenantName: "tenant-a", tenantId: "aa" },
    { accessKeyId: "LOCALMEMBERA", secret: "local-member-a-secret", role: "member", tenantName: "tenant-a", tenantId: "aa" },
  ];

  it("says what this is, names the user's endpoint, every key, and a command to try with it", () => {
    const text = (devBanner as (o: object) => string)({ endpoint: parse(["--ip", "127.0.0.1", "--port", "9123"]).endpoint, region: "us-east-1", identities, uploadPageKey: "LOCALADMINA" });
    expect(text).toMatch(/S3 endpoint that encrypts every object/);
    expect(text).toContain("S3 endpoint   http://127.0.0.1:9123");
    expect(text).toContain("Upload page   http://127.0.0.1:9123/_upload");
    for (const i of identities) expect(text).toMatch(new RegExp(`${i.accessKeyId}\\s+${i.secret}\\s+${i.role}`));
    expect(text).toContain("export AWS_ACCESS_KEY_ID=LOCALADMINA AWS_SECRET_ACCESS_KEY=local-admin-a-secret AWS_DEFAULT_REGION=us-east-1");
    expect(text).toContain("aws --endpoint-url http://127.0.0.1:9123 s3 cp README.md s3://demo/ --sse aws:kms");
    expect(text.split("\n").length).toBeLessThan(25);
  });
});
