import type { Env } from "../env";
import { fromBase64 } from "../util/bytes";

/**
 * The versioned master secrets (Worker secrets MASTER_KEY_V1..Vn, base64 of 32 bytes).
 * New writes use the newest version (or MASTER_KEY_WRITE_VERSION); objects record the
 * version they were written with, so older versions keep decrypting until the rewrap job
 * has moved everything forward and the old secret is deleted.
 */
export class MasterKeyring {
  private constructor(
    private readonly secrets: ReadonlyMap<number, Uint8Array>,
    readonly writeVersion: number,
  ) {}

  static fromEnv(env: Env): MasterKeyring {
    const secrets = new Map<number, Uint8Array>();
    for (const [name, value] of Object.entries(env)) {
      const match = /^MASTER_KEY_V([1-9][0-9]*)$/.exec(name);
      if (!match || typeof value !== "string") continue;
      const bytes = fromBase64(value.trim());
      // A malformed secret is an operator error: refuse to run rather than write under it.
      if (!bytes || bytes.byteLength !== 32) throw new Error(`${name} must be base64 of 32 bytes`);
      secrets.set(Number(match[1]), bytes);
    }
    if (secrets.size === 0) throw new Error("no master secret configured (MASTER_KEY_V1)");
    const pinned = env.MASTER_KEY_WRITE_VERSION ? Number(env.MASTER_KEY_WRITE_VERSION) : undefined;
    const writeVersion = pinned ?? Math.max(...secrets.keys());
    if (!secrets.has(writeVersion)) throw new Error(`MASTER_KEY_WRITE_VERSION ${writeVersion} is not configured`);
    return new MasterKeyring(secrets, writeVersion);
  }

  has(version: number): boolean {
    return this.secrets.has(version);
  }

  versions(): number[] {
    return [...this.secrets.keys()].sort((a, b) => a - b);
  }

  /** The secret of `version`; throws MasterKeyMissingError when it has been removed. */
  secret(version: number): Uint8Array {
    const secret = this.secrets.get(version);
    if (!secret) throw new MasterKeyMissingError(version);
    return secret;
  }
}

export class MasterKeyMissingError extends Error {
  constructor(readonly version: number) {
    super(`master secret version ${version} is not configured`);
    this.name = "MasterKeyMissingError";
  }
}

// One keyring per isolate and set of secrets: parsing is cheap but derived keys are cached
// against it, so keep the object stable between requests.
let cached: { fingerprint: string; keyring: MasterKeyring } | undefined;

export function keyringFor(env: Env): MasterKeyring {
  const fingerprint = Object.keys(env)
    .filter((name) => name.startsWith("MASTER_KEY_"))
    .sort()
    .map((name) => `${name}=${String((env as unknown as Record<string, unknown>)[name])}`)
    .join("\n");
  if (cached?.fingerprint !== fingerprint) cached = { fingerprint, keyring: MasterKeyring.fromEnv(env) };
  return cached.keyring;
}
