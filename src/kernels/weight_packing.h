// Integer weight rows repacked at load time for the AVX-512 decoders.
//
// GGUF keeps each 32-value block whole (scale, then values), so the vector
// decoders of matmul_int_decode-inl.h spend most of a group on moving bytes
// into "one block per 32-bit lane" (quant_decode.h): 16 scale loads, 16
// 128-bit loads with inserts, 8 two-table permutes per 512 values. On Zen 4
// that made decode compute-bound at about the DRAM rate (kernels_bench, the
// 0.8B model's FFN in cache: Q4_0 40 GB/s, Q8_0 58 GB/s, against 130 GB/s
// read). A packed group holds the same bytes already in that layout, so
// decoding it is plain loads (Q8_0) or a mask and a shift (4-bit values).
//
// A packed row has exactly the GGUF row's size; every group (16 blocks,
// K-quants two super-blocks) is rearranged. A partial last group of b
// blocks (rows whose length is not a multiple of 512, e.g. 384 or 896
// wide) takes Q8_0's / Q4_0's layout below with b lanes: b scales (2b
// bytes), then vectors of 4b bytes, lane l at 4l (the kernels load them
// with a lane mask). A K-quant row's partial group is one super-block
// (rows of 256 x an odd number, e.g. 2304 or 8960 wide), laid out as a
// whole group's a half with 8 lanes and vectors of 32 bytes:
//   Q4_K (144 bytes)  d, dmin (4 bytes); 8 bytes, byte l = sub-block l's
//                     scale's low 4 bits | its min's << 4; a uint16 of
//                     the scales' high 2 bits (lane l at bit 2l), one of
//                     the mins'; then 4 vectors of low | high nibbles.
//   Q5_K (176 bytes)  as Q4_K, then the vector of fifth bits (32 bytes).
//   Q6_K (210 bytes)  16 int8 scales, f16 d, the 4 nibble vectors, the 2
//                     vectors of high 2-bit pairs.
// Per whole group:
//   Q8_0 (544 bytes)  the 16 blocks' f16 scales (32 bytes), then vectors
//                     k = 0..7 of 64 bytes: lane l = block l's values
//                     4k..4k+3 as u = q + 128 (the decoder's weight bytes).
//   Q4_0 (288 bytes)  the 16 f16 scales, then vectors c = 0..3: lane l =
//                     block l's qs bytes 4c..4c+3 (low nibbles: values
//                     4c.., high nibbles: values 16 + 4c..).
//   Q4_K (288 bytes)  the two super-blocks' heads (32 bytes): their f16
//                     d, dmin (a's, then b's: 8 bytes); 16 bytes, byte l =
//                     sub-block l's 6-bit scale's low 4 bits | its min's
//                     << 4 (l < 8: a's sub-block l, else b's l - 8); a
//                     uint32 of the scales' high 2 bits (lane l at bit
//                     2l), one of the mins'. (GGUF's 12-byte packing took
//                     ~40% of a Q4_K decode in cache to unpack.) Then
//                     vectors c = 0..3 whose
//                     byte (l, i) holds decoded value q[c][l][i] in its low
//                     nibble and q[c + 4][l][i] in its high one.
//   Q5_K (352 bytes)  as Q4_K (heads, then the low nibbles), then one
//                     vector of the fifth bits: byte (l, i) holds that of
//                     q[k][l][i] at bit k, k = 0..7 (64 bytes).
//   Q6_K (420 bytes)  per super-block its 16 int8 scales then its f16 d
//                     (18 bytes, twice); then the low nibbles of the 6-bit
//                     values as Q4_K's (256 bytes); then two vectors c =
//                     0, 1 of the high 2-bit pairs: byte (l, i) holds those
//                     of q[c + 2j][l][i] at bits 2j, j = 0..3 (128 bytes).
//
// Only the AVX-512 integer kernels read packed rows; every other path (the
// scalar twin, other targets, embedding lookup) keeps reading the GGUF
// bytes, which WeightMatrix::data still points to. Results are
// bit-identical either way (tests/kernels/weight_packing_test.cpp).
#pragma once

#include <cstdint>

#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "kernels/matmul.h"

namespace specula {

// Types with a packed layout: Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
bool packable_type(DType type);

// True when the kernels this CPU dispatches to now read packed rows
// (AVX-512: Highway's AVX3 and AVX3_DL targets).
bool packed_rows_used();

// Writes the packed form of one GGUF row of n_in values of `type`
// (packable) to `packed`, dtype_row_bytes(type, n_in) bytes.
void pack_row(DType type, int64_t n_in, const uint8_t* row, uint8_t* packed);

// Packs every row of w into `storage` (resized unless it already has the
// matrix's size, so that callers may allocate first) and returns w with
// `packed` pointing there; returns w unchanged when its type is not
// packable. `storage` must outlive every use of the result.
WeightMatrix pack_weight_matrix(const WeightMatrix& w, AlignedBuffer<uint8_t>* storage);

}  // namespace specula
