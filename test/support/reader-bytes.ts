/**
 * Byte helpers for the independent readers of the format tests (format-vectors*,
 * kms-blob-vector): written here, not imported from src/, so a reader that decodes a
 * vector shares no code with the writer that made it.
 */
import { concatBytes } from "./sources";

export const te = new TextEncoder();
export const hexToBytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
export const bytesToHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
export const cat = (...parts: Uint8Array[]) => concatBytes(parts);
export const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
export const u64 = (n: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
};
