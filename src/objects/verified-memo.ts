import type { StoredChecksum } from "../checksum";
import type { DecryptPlan } from "../crypto/decrypt";
import type { ObjectFacts } from "../crypto/facts";
import { timingSafeEqual } from "../util/bytes";

/**
 * What authenticating one stored object proved, remembered on its data key so the next
 * read of the same object skips the repeated crypto: the metadata MAC, the sealed facts
 * and the trailer record (three WebCrypto calls and their encodings; a fifth of a small
 * GET's isolate time in the issue-18 profiles).
 *
 * Why a hit answers exactly what the checks would:
 * - An entry is made only after the check passed, for exactly its inputs; failures are
 *   never remembered, so tampered metadata fails every time.
 * - The data key is the CryptoKey *object* from the data-key cache (kms/data-keys.ts): the
 *   same object means the same wrapped key unwrapped by the same KEK, which that request's
 *   KeyService.forRead returned after checking the CMK's state. The memo is consulted after
 *   that check, never instead of it, and dies with the data key (WeakMap).
 * - `identity` is everything the MAC covers as stored: bucket, key, and R2's whole custom
 *   metadata (the envelope text and the user metadata). Any change to any of it is another
 *   identity and is verified afresh.
 * - Facts are reused only with the very seal-key object that opened them; a trailer only
 *   for the same stored record bytes (it is sealed under keys derived from this data key
 *   and this envelope's salt and length, which the identity pins).
 * SSE-C data keys are unwrapped per request and never reach this memo.
 */
export interface VerifiedMemo {
  readonly identity: string;
  facts?: { sealKey: CryptoKey; facts: Readonly<ObjectFacts> };
  trailer?: { record: Uint8Array; checksum: Readonly<StoredChecksum> };
}

const memos = new WeakMap<CryptoKey, VerifiedMemo>();

/** The stored inputs the envelope MAC covers, as one unambiguous string to compare (JSON). */
export function metadataIdentity(bucket: string, key: string, customMetadata: Record<string, string> | undefined): string {
  return JSON.stringify([bucket, key, customMetadata ?? {}]);
}

/** The memo of an earlier successful verification of exactly `identity` under `dataKey`, if any. */
export function verifiedBefore(dataKey: CryptoKey, identity: string): VerifiedMemo | undefined {
  const memo = memos.get(dataKey);
  return memo?.identity === identity ? memo : undefined;
}

/** Records that `identity` verified under `dataKey` (call only after the MAC check passed). */
export function rememberVerified(dataKey: CryptoKey, identity: string): VerifiedMemo {
  const memo: VerifiedMemo = { identity };
  memos.set(dataKey, memo);
  return memo;
}

/** The facts opened under `sealKey`, from the memo or by `open` (remembered when it succeeds). */
export async function memoFacts(memo: VerifiedMemo | undefined, sealKey: CryptoKey, open: () => Promise<ObjectFacts>): Promise<Readonly<ObjectFacts>> {
  if (memo?.facts?.sealKey === sealKey) return memo.facts.facts;
  const facts = Object.freeze(await open());
  if (memo) memo.facts = { sealKey, facts };
  return facts;
}

/** The trailer record's checksum, from the memo when the stored bytes are the same, else by `open`. */
export async function memoTrailer(memo: VerifiedMemo | undefined, record: Uint8Array, open: () => Promise<StoredChecksum>): Promise<StoredChecksum> {
  const known = memo?.trailer;
  if (known && timingSafeEqual(known.record, record)) return { ...known.checksum };
  const checksum = await open();
  rememberTrailer(memo, record, checksum);
  return checksum;
}

function rememberTrailer(memo: VerifiedMemo | undefined, record: Uint8Array, checksum: StoredChecksum): void {
  if (memo) memo.trailer = { record: record.slice(), checksum: Object.freeze({ ...checksum }) };
}

/** A full read's decrypt plan fields: the record it ends with is checked against, and fills, the memo. */
export function trailerPlan(memo: VerifiedMemo | undefined): Pick<DecryptPlan, "knownTrailer" | "onTrailer"> {
  if (!memo) return {};
  return { ...(memo.trailer ? { knownTrailer: memo.trailer.record } : {}), onTrailer: (record, checksum) => rememberTrailer(memo, record, checksum) };
}
