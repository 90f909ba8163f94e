import { decodeEnvelope, ENVELOPE_KEY, type SseMode } from "../crypto/envelope";
import { objectR2Key } from "./location";

/**
 * What R2 holds at a key right now, for access rules that can only REFUSE: the encryption
 * mode as the envelope states it (not MAC-checked — that needs the data key, and a refusal
 * needs no proof) and R2's etag, so a following write can be made conditional on exactly
 * this version. An envelope that cannot be decoded counts as "unknown", which callers
 * must treat like the most protected mode.
 */
export interface CurrentObject {
  mode: SseMode | "unknown";
  r2Etag: string;
}

export async function currentObject(r2: R2Bucket, bucket: string, key: string): Promise<CurrentObject | null> {
  const head = await r2.head(objectR2Key(bucket, key));
  if (!head) return null;
  return { mode: storedMode(head), r2Etag: head.etag };
}

/** The mode an R2 object's envelope states, or "unknown" (listing and guards use it alike). */
export function storedMode(object: R2Object): SseMode | "unknown" {
  try {
    return decodeEnvelope(object.customMetadata?.[ENVELOPE_KEY]).mode;
  } catch {
    return "unknown";
  }
}
