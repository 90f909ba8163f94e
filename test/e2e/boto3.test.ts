import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, inject, it } from "vitest";
import { endpoint } from "./support/clients";
import { missing } from "./support/programs";

/**
 * boto3 (pytest, test/e2e/python) against the e2e worker: the Python suite gets the
 * endpoint in S3_ENDPOINT; its output is shown when it fails.
 */
const PYTHON_DIR = fileURLToPath(new URL("./python", import.meta.url));


it.skipIf(missing("boto3.test.ts", "boto3"))("boto3: SSE-KMS and SSE-C round trips, ranges, presigned GET, multi-delete, tampered signature, SSE errors, object tagging, part ETags, stored checksums; bucket settings (pytest)", async () => {
  const result = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      "python3",
      ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEX", PYTHON_DIR],
      {
        cwd: PYTHON_DIR,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, S3_ENDPOINT: endpoint(), S3_PERSIST: inject("persist"), PYTHONDONTWRITEBYTECODE: "1", AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null", AWS_EC2_METADATA_DISABLED: "true" },
      },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}\n${stderr}` }),
    );
  });
  expect(result.code, result.output).toBe(0);
  expect(result.output).toMatch(/\d+ passed/);
});
