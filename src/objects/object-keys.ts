/**
 * The KEK an object's data key is wrapped under, for each SSE mode: the CMK's (SSE-KMS,
 * SSE-S3: KeyService) or one derived from the customer's key (SSE-C: crypto/customer-key).
 */
import {
  customerKeyMatches,
  deriveCustomerKek,
  newCustomerKeyRecord,
  type CustomerKey,
  type CustomerKeyRecord,
  type CustomerKeyScope,
} from "../crypto/customer-key";
import type { Envelope } from "../crypto/envelope";
import { Errors } from "../errors";
import type { Bucket } from "../store/buckets";
import type { SseChoice } from "./sse-choice";
import type { ObjectDeps } from "./write";

export interface ObjectWriteKey {
  kek: CryptoKey;
  /** "" and 0 for SSE-C. */
  keyArn: string;
  keyVersion: number;
  /** The master version whose seal key seals the object's facts. */
  masterVersion: number;
  /** SSE-C: the salt and verifier to store. */
  customer?: CustomerKeyRecord;
  /** The KEK is the bucket's bucket key's (external CMK): the envelope (and an upload) records it. */
  externalBucketKey?: true;
}

export function customerScope(bucket: Bucket, key: string): CustomerKeyScope {
  return { tenantId: bucket.tenantId, bucket: bucket.name, key };
}

/** The KEK a new object (or upload) at `key` wraps its fresh data key under. */
export async function writeKeyFor(deps: ObjectDeps, bucket: Bucket, key: string, sse: SseChoice): Promise<ObjectWriteKey> {
  if (sse.mode === "SSE-C") {
    const ck = requireCustomerKey(sse);
    const scope = customerScope(bucket, key);
    const customer = await newCustomerKeyRecord(ck, scope);
    return { kek: await deriveCustomerKek(ck, customer.salt, scope), keyArn: "", keyVersion: 0, masterVersion: deps.keys.keyring.writeVersion, customer };
  }
  const wk = await deps.keys.forWrite(bucket.tenantId, bucket.name, sse.mode, sse.keyId);
  return { kek: wk.kek, keyArn: wk.key.arn, keyVersion: wk.keyVersion, masterVersion: wk.masterVersion, ...(wk.bucketKey ? { externalBucketKey: true as const } : {}) };
}

function requireCustomerKey(sse: SseChoice): CustomerKey {
  if (!sse.customerKey) throw new Error("SSE-C write without a customer key");
  return sse.customerKey;
}

/**
 * The KEK to unwrap an existing object's data key. SSE-C: the key must verify against the
 * envelope's verifier first (403 otherwise), so a wrong key never reaches AES-KW.
 */
export async function readKekFor(
  deps: ObjectDeps,
  bucket: Bucket,
  key: string,
  envelope: Envelope,
  requireEnabled: boolean,
  customerKey: CustomerKey | undefined,
  wrongKey: () => unknown = () => Errors.AccessDenied({}, "Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key."),
): Promise<CryptoKey> {
  if (envelope.mode === "SSE-C") {
    // Callers that read SSE-C objects pass a gate that refuses a request without the key
    // first; any other path (a conditional write's If-Match check, say) answers as S3 does.
    if (!customerKey) {
      throw Errors.InvalidRequest({}, "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.");
    }
    if (!envelope.customer) throw new Error("SSE-C envelope without its key record");
    const scope = customerScope(bucket, key);
    if (!(await customerKeyMatches(customerKey, envelope.customer, scope))) throw wrongKey();
    return deriveCustomerKek(customerKey, envelope.customer.salt, scope);
  }
  return deps.keys.forRead(bucket.tenantId, envelope.keyArn, envelope.keyVersion, envelope.masterVersion, requireEnabled, envelope.externalBucketKey ? bucket.name : null);
}
