import { randomBytes } from "../crypto/keys";

/**
 * Upload ids: 9 base-36 digits of the creation time in milliseconds, then 24 base64url
 * characters (18 random bytes). Clients treat them as opaque; for us the time prefix makes
 * ids sort in initiation order (ListMultipartUploads orders a key's uploads that way) and
 * lets the sweep tell how old an orphaned "_mpu/<id>/" prefix is without reading it.
 */
const TIME_DIGITS = 9;
const ID = /^[0-9a-z]{9}[A-Za-z0-9_-]{24}$/;

/** Sorts after every valid upload id (a marker meaning "after all uploads of this key"). */
export const AFTER_ALL_IDS = "~";

export function newUploadId(now = Date.now()): string {
  const random = btoa(String.fromCharCode(...randomBytes(18)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_");
  return now.toString(36).padStart(TIME_DIGITS, "0") + random;
}

export function isUploadId(value: string): boolean {
  return ID.test(value);
}

/** Creation time encoded in an upload id (epoch ms), or null if it is not one of ours. */
export function uploadIdTime(id: string): number | null {
  return isUploadId(id) ? parseInt(id.slice(0, TIME_DIGITS), 36) : null;
}
