import { describe, expect, it } from "vitest";
import type { PlaintextSource } from "../../src/crypto/encrypt";
import { BufferedPlaintextWithMore, prepend, readBuffer, StreamTooLargeError, writeStreamed, type StreamedWriteRequest } from "../../src/objects/write-streamed";
import type { ObjectDeps } from "../../src/objects/write";

/** A source returning irregular piece sizes (never more than asked), then empty arrays. */
function source(data: Uint8Array, sizes = [1, 5, 1000, 3]): PlaintextSource & { ended: boolean; reads: number } {
  let offset = 0;
  let i = 0;
  const s = {
    ended: false,
    reads: 0,
    async read(max: number) {
      s.reads++;
      if (offset >= data.byteLength) {
        s.ended = true;
        return new Uint8Array(0);
      }
      const n = Math.min(max, sizes[i++ % sizes.length]!, data.byteLength - offset);
      offset += n;
      return data.slice(offset - n, offset);
    },
    async cancel() {},
  };
  return s;
}

async function drain(s: PlaintextSource, max: number): Promise<Uint8Array> {
  const out: number[] = [];
  for (;;) {
    const p = await s.read(max);
    if (p.byteLength === 0) return Uint8Array.from(out);
    out.push(...p);
  }
}

const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 255);

describe("readBuffer", () => {
  it("ends within the buffer: length known, the source's end already seen", async () => {
    const s = source(data);
    const b = await readBuffer(s, 6000);
    expect(b.ended).toBe(true);
    expect(b.length).toBe(5000);
    expect(s.ended).toBe(true);
    expect(await drain(b.source(), 333)).toEqual(data);
  });

  it("exactly full: a further empty read proves the end (and runs the source's verification)", async () => {
    const s = source(data);
    const b = await readBuffer(s, 5000);
    expect(b.ended).toBe(true);
    expect(s.ended).toBe(true);
  });

  it("longer: the first byte after the buffer is kept for the next part", async () => {
    const s = source(data);
    const b = await readBuffer(s, 1200);
    expect(b.ended).toBe(false);
    expect(b.length).toBe(1200);
    const more = (b as BufferedPlaintextWithMore).more;
    expect(more.byteLength).toBe(1);
    const rest = await drain(prepend(more, s), 777);
    expect(rest).toEqual(data.subarray(1200));
  });

  it("serves exact-size reads across pieces (encryptingStream relies on it)", async () => {
    const b = await readBuffer(source(data), 6000);
    const reader = b.source();
    for (let total = 0; total < 5000; ) {
      const piece = await reader.read(1024);
      expect(piece.byteLength).toBe(Math.min(1024, 5000 - total));
      total += piece.byteLength;
    }
    expect((await reader.read(1)).byteLength).toBe(0);
  });
});

describe("writeStreamed", () => {
  const req = (s: PlaintextSource) => ({ source: s, facts: () => ({ etag: "e" }) }) as unknown as StreamedWriteRequest;
  const deps = {} as ObjectDeps;

  it("hands a larger object to the large writer with the head buffer and the rest", async () => {
    const s = source(data);
    let seen: Uint8Array | null = null;
    await writeStreamed(deps, req(s), {
      bufferBytes: 2048,
      large: async (r, head, partBytes) => {
        expect(partBytes).toBe(2048);
        expect(head.length).toBe(2048);
        const tail = await drain(prepend(head.more, r.source), 500);
        seen = Uint8Array.from([...(await drain(head.source(), 4096)), ...tail]);
        return {} as never;
      },
    });
    expect(seen).toEqual(data);
  });

  it("without a large writer refuses with StreamTooLargeError", async () => {
    await expect(writeStreamed(deps, req(source(data)), { bufferBytes: 100 })).rejects.toBeInstanceOf(StreamTooLargeError);
  });

  it("a hint over one buffer hands the whole source (first read put back) to the hinted writer", async () => {
    const s = source(data);
    let seen: Uint8Array | null = null;
    const large = async () => {
      throw new Error("the buffered large writer must not run");
    };
    await writeStreamed(deps, req(s), {
      bufferBytes: 2048,
      large,
      lengthHint: () => ({ expected: 5000, max: 5004 }),
      hintedLarge: async (r, hint, partBytes) => {
        expect(hint).toEqual({ expected: 5000, max: 5004 });
        expect(partBytes).toBe(2048);
        seen = await drain(r.source, 700);
        return {} as never;
      },
    });
    expect(seen).toEqual(data);
  });

  it("a hint within one buffer, or none, takes the buffered path", async () => {
    for (const hint of [{ expected: 2048, max: 2052 }, null]) {
      let used = "";
      await writeStreamed(deps, req(source(data)), {
        bufferBytes: 2048,
        lengthHint: () => hint,
        hintedLarge: async () => ((used = "hinted"), {} as never),
        large: async () => ((used = "buffered"), {} as never),
      });
      expect(used).toBe("buffered");
    }
  });
});

describe("prepend", () => {
  it("never reads its source again after the source's empty read (its verification runs once)", async () => {
    const s = source(Uint8Array.of(1, 2, 3), [1000]);
    const p = prepend(Uint8Array.of(0), s);
    expect(await p.read(10)).toEqual(Uint8Array.of(0, 1, 2, 3));
    const readsAtEnd = s.reads;
    expect((await p.read(10)).byteLength).toBe(0);
    expect((await p.read(10)).byteLength).toBe(0);
    expect(s.reads).toBe(readsAtEnd + 1);
  });
});
