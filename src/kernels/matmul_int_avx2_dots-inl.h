// The AVX3 / AVX2 integer dots of matmul_int_simd.cpp (no VNNI: pmaddubsw
// + pmaddwd on 256-bit halves of a group): DotRows over one decoded weight
// row. Included by that file once per target, inside its namespace, for
// those two targets only; it has no include guard for that reason.

template <int MT, int kBiasShift, bool kHalves, bool kMin, bool kSigned>
HWY_NOINLINE void DotRows(const DecodedGroup* dec, const ActivationRows& a, int64_t m0,
                          float* out) {
  const int64_t per_row = a.n_groups * kGroupBlocks;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256 acc[MT];
  for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t g = 0; g < a.n_groups; ++g) {
    const DecodedGroup& d = dec[g];
    for (int half = 0; half < 2; ++half) {
      const int l0 = 8 * half;
      __m256i w[8];
      for (int k = 0; k < 8; ++k) {
        w[k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(&d.q[k][l0][0]));
        // Q8_0: back to int8; pmaddubsw then takes |w| and x with w's sign
        // (u8 128 + 127 would saturate its int16 pair sums).
        if constexpr (kSigned) w[k] = _mm256_xor_si256(w[k], flip);
      }
      const __m256 ws = _mm256_load_ps(d.scale + l0);
      for (int i = 0; i < MT; ++i) {
        const int64_t at = (m0 + i) * per_row + g * kGroupBlocks + l0;
        const int8_t* x = a.values + (at - l0) * 32 + 4 * l0;
        const __m256 dx = _mm256_load_ps(a.scales + at);
        auto dot = [&](int k) {
          const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x + 64 * k));
          const __m256i p = kSigned ? _mm256_maddubs_epi16(_mm256_sign_epi8(w[k], w[k]),
                                                           _mm256_sign_epi8(xv, w[k]))
                                    : _mm256_maddubs_epi16(w[k], xv);
          return _mm256_madd_epi16(p, ones);
        };
        if constexpr (kHalves) {
          const __m256i neg = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.neg_sums + at));
          const __m256i neg_lo =
              _mm256_load_si256(reinterpret_cast<const __m256i*>(a.neg_sums_lo + at));
          __m256i lo = _mm256_slli_epi32(neg_lo, kBiasShift);
          __m256i hi = _mm256_slli_epi32(_mm256_sub_epi32(neg, neg_lo), kBiasShift);
          for (int k = 0; k < 4; ++k) {
            lo = _mm256_add_epi32(lo, dot(k));
            hi = _mm256_add_epi32(hi, dot(k + 4));
          }
          acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(ws, dx), acc[i]);
          acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi),
                                   _mm256_mul_ps(_mm256_load_ps(d.scale_hi + l0), dx), acc[i]);
        } else {
          __m256i s =
              kBiasShift >= 0
                  ? _mm256_slli_epi32(
                        _mm256_load_si256(reinterpret_cast<const __m256i*>(a.neg_sums + at)),
                        kBiasShift >= 0 ? kBiasShift : 0)
                  : _mm256_setzero_si256();
          for (int k = 0; k < 8; ++k) s = _mm256_add_epi32(s, dot(k));
          acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(ws, dx), acc[i]);
          if constexpr (kMin) {
            acc[i] = _mm256_fmadd_ps(_mm256_load_ps(d.min + l0), _mm256_load_ps(a.scaled_sums + at),
                                     acc[i]);
          }
        }
      }
    }
  }
  for (int i = 0; i < MT; ++i) {
    const __m128 q = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
    const __m128 h = _mm_add_ps(q, _mm_movehl_ps(q, q));
    out[i] = _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
  }
}
