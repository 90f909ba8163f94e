;; CRC64NVME (and CRC32C) table-driven CRCs in WebAssembly: the readable source of crc.wasm.
;; Rebuild with `npm run build:wasm` (wabt's wat2wasm, pinned in package.json, so the
;; output is byte-identical); both files are checked in, so installing needs no compiler.
;; Why wasm at all, and how the JS side feeds it: src/checksum/wasm.ts.
;;
;; Memory (1 page = 64 KiB):
;;   0      .. 32767   CRC64NVME tables T0..T15, 256 × i64 each (T_k at 2048·k)
;;   32768  .. 49151   CRC32C tables C0..C15, 256 × i32 each (C_k at 32768 + 1024·k)
;;   65536  .. end     input window: JS copies a piece of the body here, then calls a CRC
;;
;; T_k[b] is the CRC register after byte b followed by k zero bytes (no init, no xorout), so
;; for a 16-byte block read as two little-endian i64 a = load(p) ⊕ crc, b = load(p+8):
;;   crc' = T15[a₀] ⊕ T14[a₁] ⊕ … ⊕ T8[a₇] ⊕ T7[b₀] ⊕ … ⊕ T0[b₇]      (slicing-by-16)
;; Each byte's table address is ((x >> 8j) & 255)·8, computed as (x >> (8j−3)) & 0x7f8, and
;; the table's base is the load's constant offset: one shift, one and, one load per byte.
;; Wasm is little-endian by definition, so no byte-order question arises.
(module
  (memory (export "memory") 5)
  ;; Where the input window starts, and its size, for the JS side (one source of truth).
  (global (export "input") i32 (i32.const 65536))
  (global (export "inputSize") i32 (i32.const 262144))

  (start $init)

  ;; Builds both table sets at instantiation (≈ 8k iterations; no data segment to ship).
  (func $init
    (local $b i32) (local $k i32) (local $c64 i64) (local $c32 i32) (local $at i32)
    ;; T0 and C0: the bitwise CRC of each byte value.
    (loop $byte
      (local.set $c64 (i64.extend_i32_u (local.get $b)))
      (local.set $c32 (local.get $b))
      (local.set $k (i32.const 8))
      (loop $bit
        (local.set $c64
          (i64.xor
            (i64.shr_u (local.get $c64) (i64.const 1))
            (i64.and (i64.const 0x9a6c9329ac4bc9b5)
                     (i64.sub (i64.const 0) (i64.and (local.get $c64) (i64.const 1))))))
        (local.set $c32
          (i32.xor
            (i32.shr_u (local.get $c32) (i32.const 1))
            (i32.and (i32.const 0x82f63b78)
                     (i32.sub (i32.const 0) (i32.and (local.get $c32) (i32.const 1))))))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br_if $bit (local.get $k)))
      (i64.store (i32.shl (local.get $b) (i32.const 3)) (local.get $c64))
      (i32.store offset=32768 (i32.shl (local.get $b) (i32.const 2)) (local.get $c32))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br_if $byte (i32.lt_u (local.get $b) (i32.const 256))))
    ;; T_k[b] = (T_{k−1}[b] >> 8) ⊕ T0[T_{k−1}[b] & 255]: one more zero byte.
    (local.set $at (i32.const 256))   ;; entry index over tables 1..15
    (loop $next
      (local.set $c64 (i64.load (i32.shl (i32.sub (local.get $at) (i32.const 256)) (i32.const 3))))
      (i64.store (i32.shl (local.get $at) (i32.const 3))
        (i64.xor (i64.shr_u (local.get $c64) (i64.const 8))
                 (i64.load (i32.shl (i32.and (i32.wrap_i64 (local.get $c64)) (i32.const 255)) (i32.const 3)))))
      (local.set $c32 (i32.load offset=32768 (i32.shl (i32.sub (local.get $at) (i32.const 256)) (i32.const 2))))
      (i32.store offset=32768 (i32.shl (local.get $at) (i32.const 2))
        (i32.xor (i32.shr_u (local.get $c32) (i32.const 8))
                 (i32.load offset=32768 (i32.shl (i32.and (local.get $c32) (i32.const 255)) (i32.const 2)))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $at) (i32.const 4096)))))

  ;; CRC64NVME register after `len` bytes at `p`, starting from `crc` (the raw register: the
  ;; caller applies init and xorout).
  (func (export "crc64") (param $crc i64) (param $p i32) (param $len i32) (result i64)
    (local $a i64) (local $b i64) (local $end i32)
    (local.set $end (i32.add (local.get $p) (i32.and (local.get $len) (i32.const -16))))
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (loop $block
          (local.set $a (i64.xor (local.get $crc) (i64.load (local.get $p))))
          (local.set $b (i64.load offset=8 (local.get $p)))
          (local.set $crc
            (i64.xor
              (i64.xor
                (i64.xor
                  (i64.xor
                    (i64.load offset=30720 (i32.and (i32.shl (i32.wrap_i64 (local.get $a)) (i32.const 3)) (i32.const 0x7f8)))
                    (i64.load offset=28672 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 5))) (i32.const 0x7f8))))
                  (i64.xor
                    (i64.load offset=26624 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 13))) (i32.const 0x7f8)))
                    (i64.load offset=24576 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 21))) (i32.const 0x7f8)))))
                (i64.xor
                  (i64.xor
                    (i64.load offset=22528 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 29))) (i32.const 0x7f8)))
                    (i64.load offset=20480 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 37))) (i32.const 0x7f8))))
                  (i64.xor
                    (i64.load offset=18432 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $a) (i64.const 45))) (i32.const 0x7f8)))
                    (i64.load offset=16384 (i32.wrap_i64 (i64.shl (i64.shr_u (local.get $a) (i64.const 56)) (i64.const 3)))))))
              (i64.xor
                (i64.xor
                  (i64.xor
                    (i64.load offset=14336 (i32.and (i32.shl (i32.wrap_i64 (local.get $b)) (i32.const 3)) (i32.const 0x7f8)))
                    (i64.load offset=12288 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 5))) (i32.const 0x7f8))))
                  (i64.xor
                    (i64.load offset=10240 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 13))) (i32.const 0x7f8)))
                    (i64.load offset=8192 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 21))) (i32.const 0x7f8)))))
                (i64.xor
                  (i64.xor
                    (i64.load offset=6144 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 29))) (i32.const 0x7f8)))
                    (i64.load offset=4096 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 37))) (i32.const 0x7f8))))
                  (i64.xor
                    (i64.load offset=2048 (i32.and (i32.wrap_i64 (i64.shr_u (local.get $b) (i64.const 45))) (i32.const 0x7f8)))
                    (i64.load (i32.wrap_i64 (i64.shl (i64.shr_u (local.get $b) (i64.const 56)) (i64.const 3)))))))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $block (i32.lt_u (local.get $p) (local.get $end))))))
    ;; The last < 16 bytes, one at a time through T0.
    (local.set $end (i32.add (local.get $p) (i32.and (local.get $len) (i32.const 15))))
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $crc
          (i64.xor
            (i64.shr_u (local.get $crc) (i64.const 8))
            (i64.load (i32.shl (i32.and (i32.xor (i32.wrap_i64 (local.get $crc)) (i32.load8_u (local.get $p))) (i32.const 255)) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $byte)))
    (local.get $crc))

  ;; CRC32C register after `len` bytes at `p`, starting from `crc` (raw register, as above).
  ;; Same slicing-by-16 with 32-bit entries: a = load32(p) ⊕ crc, then the other 12 bytes.
  (func (export "crc32c") (param $crc i32) (param $p i32) (param $len i32) (result i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $end i32)
    (local.set $end (i32.add (local.get $p) (i32.and (local.get $len) (i32.const -16))))
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (loop $block
          (local.set $a (i32.xor (local.get $crc) (i32.load (local.get $p))))
          (local.set $b (i32.load offset=4 (local.get $p)))
          (local.set $c (i32.load offset=8 (local.get $p)))
          (local.set $d (i32.load offset=12 (local.get $p)))
          (local.set $crc
            (i32.xor
              (i32.xor
                (i32.xor
                  (i32.xor
                    (i32.load offset=48128 (i32.and (i32.shl (local.get $a) (i32.const 2)) (i32.const 0x3fc)))
                    (i32.load offset=47104 (i32.and (i32.shr_u (local.get $a) (i32.const 6)) (i32.const 0x3fc))))
                  (i32.xor
                    (i32.load offset=46080 (i32.and (i32.shr_u (local.get $a) (i32.const 14)) (i32.const 0x3fc)))
                    (i32.load offset=45056 (i32.shl (i32.shr_u (local.get $a) (i32.const 24)) (i32.const 2)))))
                (i32.xor
                  (i32.xor
                    (i32.load offset=44032 (i32.and (i32.shl (local.get $b) (i32.const 2)) (i32.const 0x3fc)))
                    (i32.load offset=43008 (i32.and (i32.shr_u (local.get $b) (i32.const 6)) (i32.const 0x3fc))))
                  (i32.xor
                    (i32.load offset=41984 (i32.and (i32.shr_u (local.get $b) (i32.const 14)) (i32.const 0x3fc)))
                    (i32.load offset=40960 (i32.shl (i32.shr_u (local.get $b) (i32.const 24)) (i32.const 2))))))
              (i32.xor
                (i32.xor
                  (i32.xor
                    (i32.load offset=39936 (i32.and (i32.shl (local.get $c) (i32.const 2)) (i32.const 0x3fc)))
                    (i32.load offset=38912 (i32.and (i32.shr_u (local.get $c) (i32.const 6)) (i32.const 0x3fc))))
                  (i32.xor
                    (i32.load offset=37888 (i32.and (i32.shr_u (local.get $c) (i32.const 14)) (i32.const 0x3fc)))
                    (i32.load offset=36864 (i32.shl (i32.shr_u (local.get $c) (i32.const 24)) (i32.const 2)))))
                (i32.xor
                  (i32.xor
                    (i32.load offset=35840 (i32.and (i32.shl (local.get $d) (i32.const 2)) (i32.const 0x3fc)))
                    (i32.load offset=34816 (i32.and (i32.shr_u (local.get $d) (i32.const 6)) (i32.const 0x3fc))))
                  (i32.xor
                    (i32.load offset=33792 (i32.and (i32.shr_u (local.get $d) (i32.const 14)) (i32.const 0x3fc)))
                    (i32.load offset=32768 (i32.shl (i32.shr_u (local.get $d) (i32.const 24)) (i32.const 2))))))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $block (i32.lt_u (local.get $p) (local.get $end))))))
    (local.set $end (i32.add (local.get $p) (i32.and (local.get $len) (i32.const 15))))
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $crc
          (i32.xor
            (i32.shr_u (local.get $crc) (i32.const 8))
            (i32.load offset=32768 (i32.shl (i32.and (i32.xor (local.get $crc) (i32.load8_u (local.get $p))) (i32.const 255)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $byte)))
    (local.get $crc)))
