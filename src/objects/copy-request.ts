import type { ChecksumAlgorithm } from "../checksum";
import type { HttpMetadata } from "../crypto/envelope";
import type { Bucket } from "../store/buckets";
import type { Gate, ObjectInfo } from "./object-info";
import type { SseChoice } from "./sse-choice";

/** A CopyObject as the objects layer sees it (copy.ts, and copy-reencrypted.ts for copies that decrypt and encrypt again). */
export interface CopyRequest {
  source: { bucket: Bucket; key: string };
  target: { bucket: Bucket; key: string };
  sse: SseChoice;
  /** New metadata (REPLACE), or null to keep the source's (COPY). */
  metadata: { http: HttpMetadata; userMetadata: Record<string, string> } | null;
  gate: Gate;
  check: (info: ObjectInfo) => void;
  /** x-amz-checksum-algorithm: the copy's checksum is this algorithm's (computed while re-encrypting). */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** R2's condition on the target, atomic with the write (WritePreconditionFailed when it fails). */
  onlyIf?: R2Conditional;
}
