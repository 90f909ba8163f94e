import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { inject } from "vitest";

export const REGION = "us-east-1";

export const IDENTITIES = {
  adminA: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret", tenantId: "000000000000000000000000000000aa" },
  memberA: { accessKeyId: "LOCALMEMBERA", secretAccessKey: "local-member-a-secret", tenantId: "000000000000000000000000000000aa" },
  adminB: { accessKeyId: "LOCALADMINB", secretAccessKey: "local-admin-b-secret", tenantId: "000000000000000000000000000000bb" },
} as const;
export type IdentityName = keyof typeof IDENTITIES;

export function endpoint(): string {
  return inject("endpoint");
}

/** AWS SDK v3 client with its default checksum behaviour (CRC32 trailers on uploads). */
export function s3(who: IdentityName = "adminA", extra: Partial<S3ClientConfig> = {}): S3Client {
  const { accessKeyId, secretAccessKey } = IDENTITIES[who];
  return new S3Client({ endpoint: endpoint(), region: REGION, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, ...extra });
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with an identity's credentials in its environment. */
export function runWith(who: IdentityName, command: string, args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  const { accessKeyId, secretAccessKey } = IDENTITIES[who];
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        maxBuffer: 64 * 1024 * 1024,
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: accessKeyId,
          AWS_SECRET_ACCESS_KEY: secretAccessKey,
          AWS_DEFAULT_REGION: REGION,
          AWS_EC2_METADATA_DISABLED: "true",
          AWS_CONFIG_FILE: "/dev/null",
          AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
          ...env,
        },
      },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** aws-cli (the machine's v1 on PATH) against the endpoint. */
export function awsCli(who: IdentityName, args: string[]): Promise<CommandResult> {
  return runWith(who, "aws", ["--endpoint-url", endpoint(), ...args]);
}

export function uniqueBucket(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Environment for rclone's env-based remote "gw:" as an identity (README, "rclone and
 * s3cmd"): the shared test worker unless `at` names another; `sse` false drops the
 * server-side encryption setting; `cacheDir` is rclone's own.
 */
export function rcloneEnv(who: IdentityName, o: { cacheDir: string; at?: string; sse?: boolean }): Record<string, string> {
  const { accessKeyId, secretAccessKey } = IDENTITIES[who];
  return {
    RCLONE_CONFIG_GW_TYPE: "s3",
    RCLONE_CONFIG_GW_PROVIDER: "Other",
    RCLONE_CONFIG_GW_ENV_AUTH: "false",
    RCLONE_CONFIG_GW_ACCESS_KEY_ID: accessKeyId,
    RCLONE_CONFIG_GW_SECRET_ACCESS_KEY: secretAccessKey,
    RCLONE_CONFIG_GW_ENDPOINT: o.at ?? endpoint(),
    RCLONE_CONFIG_GW_REGION: REGION,
    RCLONE_CONFIG_GW_FORCE_PATH_STYLE: "true",
    ...(o.sse ?? true ? { RCLONE_CONFIG_GW_SERVER_SIDE_ENCRYPTION: "aws:kms" } : {}),
    RCLONE_CACHE_DIR: o.cacheDir,
  };
}
