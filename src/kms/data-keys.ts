import { unwrapDataKey } from "../crypto/keys";

/**
 * Unwrapped data keys, cached per isolate for a short, bounded time, keyed by the KEK
 * object and the wrapped key's bytes. A GET of a small object otherwise spends a third of
 * its crypto on AES-KW unwrap and the two HKDF derivations below it (memoized on the data
 * key, crypto/keys.ts), repeated for every read of the same object.
 *
 * Why this is safe:
 * - Callers reach it only with a KEK that KeyService.forRead (or forWrite) returned for
 *   this request, and forRead checks the CMK's state on every call (a cached row at most
 *   KEY_CACHE_TTL_SECONDS old). So a DisableKey, a pending deletion or a destroyed key
 *   refuses reads exactly as soon as it did before: the cache is consulted after the
 *   check, never instead of it. Disabling a key costs nothing more than before.
 * - The key is the KEK *object*: KEKs are cached by KeyService and dropped by forgetKey
 *   (a destroyed or rotated key in this isolate) and, for external CMKs, with the
 *   external KMS's cache entry. A dropped KEK makes every data key cached under it
 *   unreachable (WeakMap), so no data key outlives the KEK that unwrapped it here.
 * - Unwrapping is a pure function of (KEK, wrapped bytes): a hit returns the key AES-KW
 *   would, and a failed unwrap is never cached (tampered metadata fails every time).
 * - The cached CryptoKeys are non-extractable; the KEK already held in this isolate can
 *   unwrap any of them, so keeping them 60 s more exposes nothing new.
 * SSE-C KEKs are derived per request from the customer's key, so they never hit; callers
 * do not use this for them.
 */
const TTL_MS = 60_000;
/** Entries per KEK: a hot working set of objects, bounded (oldest out first). */
const MAX_PER_KEK = 1024;

const cache = new WeakMap<CryptoKey, Map<string, { dataKey: CryptoKey; until: number }>>();

/** `unwrapDataKey(kek, wrapped)` through the cache; only with a KEK from this request's forRead. */
export async function unwrapCheckedDataKey(kek: CryptoKey, wrapped: Uint8Array, now = Date.now()): Promise<CryptoKey> {
  let entries = cache.get(kek);
  if (!entries) cache.set(kek, (entries = new Map()));
  const name = String.fromCharCode(...wrapped);
  const hit = entries.get(name);
  if (hit && hit.until > now) return hit.dataKey;
  const dataKey = await unwrapDataKey(kek, wrapped);
  entries.delete(name);
  if (entries.size >= MAX_PER_KEK) entries.delete(entries.keys().next().value!);
  entries.set(name, { dataKey, until: now + TTL_MS });
  return dataKey;
}
