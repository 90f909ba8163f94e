import type { CustomerKey } from "../crypto/customer-key";
import type { SseMode } from "../crypto/envelope";

/** How a write is to be encrypted, after request headers and bucket defaults are applied. */
export interface SseChoice {
  mode: SseMode;
  keyId?: string;
  /** x-amz-server-side-encryption-context as sent (base64 of a JSON object). */
  context?: string;
  bucketKeyEnabled: boolean;
  /** SSE-C: the request's key (mode "SSE-C" only). Never stored. */
  customerKey?: CustomerKey;
  /** Chosen by the request's own headers (policy conditions and tenant rules see these). */
  explicit: boolean;
}
