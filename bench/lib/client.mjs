// The S3 client every bench script drives the bench worker with: its seeded admin
// credentials, path-style, and no checksum the SDK would otherwise compute (WHEN_REQUIRED:
// it would presign a CRC32 of the empty body into PUT URLs).
import { S3Client } from "@aws-sdk/client-s3";

export function benchClient(endpoint) {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    credentials: { accessKeyId: "LOCALADMINA", secretAccessKey: "local-admin-a-secret" },
  });
}
