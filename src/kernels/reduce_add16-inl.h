// ReduceAdd16: the sums of 16 AVX-512 vectors' lanes in one vector, for
// the integer tiles (matmul_int_tiles-inl.h). Included once per target, inside the includer's
// HWY_NAMESPACE and only where the target has AVX-512; it has no include
// guard for that reason.

// _mm512_reduce_add_ps of 16 vectors at once, in its order of additions
// (lane j + lane j + 8, then j + j + 4, then j + j + 2, then j + j + 1;
// IEEE addition is commutative, so the operands' order within a sum does
// not matter): lane p of the result = the sum of v[(p % 4) * 4 + p / 4].
// Every vector's sum takes the same additions whatever its position, so a
// sum does not depend on which 15 vectors it was reduced beside.
// 15 additions and 30 shuffles for 16 sums, where one reduce_add per
// vector takes ~8 instructions; in the tiles at n_in = 2048 (4 groups per
// row) the per-vector reductions were ~10% of a Q4_0 tile's time.
HWY_INLINE __m512 ReduceAdd16(const __m512 (&v)[16]) {
  __m512 u[8];  // 128-bit lane pairs (0, 1) and (2, 3): j + j + 8 of v[2q], v[2q + 1]
  for (int q = 0; q < 8; ++q) {
    u[q] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * q], v[2 * q + 1], 0xEE));
  }
  __m512 w[4];  // 128-bit lane t: j + j + 4 of v[4p + t]
  for (int p = 0; p < 4; ++p) {
    w[p] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * p], u[2 * p + 1], 0x88),
                         _mm512_shuffle_f32x4(u[2 * p], u[2 * p + 1], 0xDD));
  }
  __m512 z[2];  // lane (t, e): j + j + 2, e = 0, 1 of v[8s + t], e = 2, 3 of v[8s + 4 + t]
  for (int q = 0; q < 2; ++q) {
    z[q] = _mm512_add_ps(_mm512_shuffle_ps(w[2 * q], w[2 * q + 1], 0x44),
                         _mm512_shuffle_ps(w[2 * q], w[2 * q + 1], 0xEE));
  }
  return _mm512_add_ps(_mm512_shuffle_ps(z[0], z[1], 0x88), _mm512_shuffle_ps(z[0], z[1], 0xDD));
}
