// The multi-row (prefill and verification, m >= 2) float-weight tiles of
// matmul_simd.cpp: FloatRowsBlocked and its helpers. Included by that file
// once per target, inside its namespace, after FloatTile (whose helpers
// it uses); it has no include guard for that reason.

// Keeps v in a register: without this GCC folds the activation load into
// every FMA that uses it (R loads of the same vector instead of one), and
// on AVX-512 the loads, not the FMAs, then set the pace. An empty asm, so
// the values and the arithmetic are unchanged.
template <class V>
HWY_INLINE void KeepInRegister(V& v) {
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL) && \
    (defined(__GNUC__) || defined(__clang__))
  asm("" : "+v"(v.raw));
#else
  (void)v;
#endif
}

// Prefill and verification (m >= 2): the same tiles, blocked over k.
// Unblocked, a tile of 2 weight rows x 8 activation rows streams all 8
// activation rows (8 x 16 KB for n_in = 4096) from L2 for every pair of
// weight rows, and L2 bandwidth, not the FMA units, sets the pace. Here a
// block of kRowBlock weight rows runs chunk by chunk over k: the kChunk
// values of the activation rows stay in L1 while every tile of the block
// passes over them, and the accumulators wait in a small per-thread array
// between chunks. Each (weight row, activation row) accumulator still
// sees the k values in the same order, and the final sum is the same, so
// results are bit-identical to the unblocked tiles (and to m = 1).
constexpr int64_t kRowBlock = 24;  // a multiple of every tile height R
// Values per chunk: 2 KB of each activation row (up to 12 rows, 24 KB),
// 512 floats or 1024 BF16 values.
template <class X>
constexpr int64_t kChunk = 2048 / sizeof(X);

// Chunk [k0, k1) of tile (r0, m0); state holds R x MT accumulator vectors,
// xc the chunk's activations packed: row i's value k at xc[i kChunk + k - k0].
// next: the weights the next tile will read in its chunk, at the byte where
// it starts (row 0; rows 1.. follow row_bytes apart), or null. They are
// prefetched alongside: the tiles jump between rows every kChunk values,
// and Zen 4's prefetchers do not follow the jumps, so without this every
// chunk of every row starts with a wait on memory.
// far: the same tile's weights in the next row block (kRowBlock rows on),
// or null; they are prefetched into L2. One tile ahead is ~100 ns of
// work, about one DRAM latency: the first pass over a block (m0 = 0) then
// waited on memory, and BF16 at m = 4..16 ran at 20-25 GB/s against 36 at
// m = 1, the loads and the arithmetic taking turns. A block ahead (96 KB
// for rows of 2048 BF16 values) keeps the stream going under the
// arithmetic: kernels_bench BF16 2048x5632 and 5632x2048 at m = 9 took
// 0.66-0.7x the time (t(9)/t(1) 1.6 -> 1.1), F16 at m = 4 0.7x, BF16 at
// m = 64 0.93x.
// kMath kBf16Dot: xc holds BF16 activations, and 32-value steps run
// vdpbf16ps; kBf16DotFma: xc holds each 32-value step's activations as
// floats, its 16 odd values then its 16 even ones (PackBf16OddEven), and
// the step runs vdpbf16ps's two FMAs per lane in its order (odd, even).
template <DType kType, int R, int MT, TileMath kMath, class X>
HWY_NOINLINE void FloatTileChunk(const MatmulJob& job, int64_t r0, const X* HWY_RESTRICT xc,
                                 int64_t k0, int64_t k1, float* HWY_RESTRICT state,
                                 const uint8_t* next, const uint8_t* far) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const int64_t step = StepOf<kMath != TileMath::kFloat>(df);
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = job.weights + (r0 + r) * job.row_bytes;
  V acc[R][MT];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) {
      acc[r][i] = k0 == 0 ? hn::Zero(df) : hn::Load(df, state + (r * MT + i) * n);
    }
  }
  constexpr int64_t kSize = kType == DType::kF32 ? 4 : 2;
  for (int64_t k = k0; k < k1; k += step) {
    if (next != nullptr) {
      for (int r = 0; r < R; ++r) {
        hwy::Prefetch(next + static_cast<int64_t>(r * job.row_bytes) + (k - k0) * kSize);
      }
    }
    if (far != nullptr) {
      for (int r = 0; r < R; ++r) {  // into L2 (locality 2: prefetcht1 on x86)
        __builtin_prefetch(far + static_cast<int64_t>(r * job.row_bytes) + (k - k0) * kSize, 0, 2);
      }
    }
    if constexpr (kMath == TileMath::kBf16DotFma) {
      const hn::RebindToUnsigned<decltype(df)> du;
      V w_odd[R];
      V w_even[R];
      for (int r = 0; r < R; ++r) {
        const auto pairs = hn::LoadU(du, reinterpret_cast<const uint32_t*>(rows[r]) + k / 2);
        w_odd[r] = OddBf16(df, pairs);
        w_even[r] = EvenBf16(df, pairs);
      }
      for (int i = 0; i < MT; ++i) {
        const float* xi = reinterpret_cast<const float*>(xc) + i * kChunk<X> + (k - k0);
        V x = hn::LoadU(df, xi);
        KeepInRegister(x);
        for (int r = 0; r < R; ++r) acc[r][i] = hn::MulAdd(w_odd[r], x, acc[r][i]);
        x = hn::LoadU(df, xi + n);
        KeepInRegister(x);
        for (int r = 0; r < R; ++r) acc[r][i] = hn::MulAdd(w_even[r], x, acc[r][i]);
      }
      continue;
    }
    if constexpr (kMath == TileMath::kBf16Dot) {
      Bf16Pairs w[R];
      for (int r = 0; r < R; ++r) {
        w[r] = LoadBf16Pairs(reinterpret_cast<const uint16_t*>(rows[r]) + k);
      }
      for (int i = 0; i < MT; ++i) {
        Bf16Pairs x = LoadBf16Pairs(xc + i * kChunk<X> + (k - k0));
        KeepBf16InRegister(x);
        for (int r = 0; r < R; ++r) acc[r][i] = DotBf16(acc[r][i], w[r], x);
      }
      continue;
    }
    V w[R];
    for (int r = 0; r < R; ++r) w[r] = LoadWeightVector<kType>(df, rows[r], k);
    for (int i = 0; i < MT; ++i) {
      V x = hn::LoadU(df, reinterpret_cast<const float*>(xc) + i * kChunk<X> + (k - k0));
      KeepInRegister(x);
      for (int r = 0; r < R; ++r) acc[r][i] = hn::MulAdd(w[r], x, acc[r][i]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) hn::Store(acc[r][i], df, state + (r * MT + i) * n);
  }
}

// The tiles of R rows in [r_begin, r_end) (a multiple of R rows) for
// activation rows [m0, m0 + MT), chunk by chunk, then their sums and
// scalar tails as in FloatTile.
// far_end: the end of the thread's rows on the first pass over the block
// (m0 = 0), else 0: tiles prefetch their next block's weights while the
// rows lie within it.
template <DType kType, int R, int MT, TileMath kMath, class X>
void FloatBlockTiles(const MatmulJob& job, int64_t r_begin, int64_t r_end, int64_t m0,
                     const X* HWY_RESTRICT packed, float* HWY_RESTRICT state, int64_t far_end) {
  const hn::ScalableTag<float> df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  constexpr bool kPairs = kMath != TileMath::kFloat;
  const int64_t k_vec = job.n_in / StepOf<kPairs>(df) * StepOf<kPairs>(df);
  const int64_t tile_floats = R * MT * n;
  constexpr int64_t kSize = kType == DType::kF32 ? 4 : 2;
  {
    // vdpbf16ps treats denormal inputs as zero and flushes denormal
    // results; its FMA twin does the same while it runs (not in the sums
    // and tails below, which every path computes in the default mode).
    ScopedBf16DotDenormals denormals(kMath == TileMath::kBf16DotFma);
    for (int64_t k0 = 0;; k0 += kChunk<X>) {
      const int64_t k1 = std::min(k0 + kChunk<X>, k_vec);
      for (int64_t r0 = r_begin; r0 < r_end; r0 += R) {
        // The next tile of this chunk, else the first tile's next chunk.
        const uint8_t* next = nullptr;
        if (r0 + R < r_end) {
          next = job.weights + (r0 + R) * job.row_bytes + k0 * kSize;
        } else if (k1 < k_vec) {
          next = job.weights + r_begin * job.row_bytes + k1 * kSize;
        }
        const uint8_t* far = nullptr;
        if (r0 + kRowBlock + R <= far_end) {
          far = job.weights + (r0 + kRowBlock) * job.row_bytes + k0 * kSize;
        }
        FloatTileChunk<kType, R, MT, kMath>(job, r0, packed + k0 * MT, k0, k1,
                                            state + (r0 - r_begin) / R * tile_floats, next, far);
      }
      if (k1 >= k_vec) break;
    }
  }
  for (int64_t r0 = r_begin; r0 < r_end; r0 += R) {
    const float* tile = state + (r0 - r_begin) / R * tile_floats;
    for (int r = 0; r < R; ++r) {
      const uint8_t* row = job.weights + (r0 + r) * job.row_bytes;
      for (int i = 0; i < MT; ++i) {
        const float* x = job.x + (m0 + i) * job.n_in;
        float sum = hn::GetLane(hn::SumOfLanes(df, hn::Load(df, tile + (r * MT + i) * n)));
        for (int64_t t = k_vec; t < job.n_in; ++t) sum += LoadWeightScalar<kType>(row, t) * x[t];
        job.y[(m0 + i) * job.n_out + r0 + r] = Scaled(job, m0 + i, sum);
      }
    }
  }
}

// One row block for activation rows [m0, m0 + MT): tiles of R rows (4
// for the smaller MT, so that enough accumulator chains hide the FMA
// latency and each activation vector feeds more rows, as long as R x MT
// accumulators fit the registers: on AVX-512 4 up to MT = 4, 3 up to 8,
// 2 up to 12; elsewhere 4 or 2), the leftover rows one by one.
template <DType kType, int MT, TileMath kMath, class X>
void FloatBlock(const MatmulJob& job, int64_t r_begin, int64_t r_end, int64_t m0,
                const X* HWY_RESTRICT packed, float* HWY_RESTRICT state, int64_t far_end) {
  constexpr int R = kFloatTileM == 12       ? (MT <= 4   ? 4
                                               : MT <= 8 ? 3
                                                         : 2)
                    : 2 * MT <= kFloatTileM ? 4
                                            : 2;
  const int64_t r_tiled = r_begin + (r_end - r_begin) / R * R;
  if (r_tiled > r_begin) {
    FloatBlockTiles<kType, R, MT, kMath>(job, r_begin, r_tiled, m0, packed, state, far_end);
  }
  if (r_end > r_tiled) {
    FloatBlockTiles<kType, 1, MT, kMath>(job, r_tiled, r_end, m0, packed, state, far_end);
  }
}

// kMath kBf16Dot: the BF16 activations (job.x_bf16) are packed instead,
// and the tiles take BF16 dot products (simd_bf16_dot); kBf16DotFma: the
// same products as F32 FMAs (simd_bf16_dot_fma), the BF16 activations
// packed as floats in odd/even order.
template <DType kType, TileMath kMath>
void FloatRowsBlocked(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  using X = std::conditional_t<kMath == TileMath::kBf16Dot, uint16_t, float>;
  const hn::ScalableTag<float> df;
  thread_local AlignedBuffer<float> state;
  const auto need = static_cast<size_t>(kRowBlock * kFloatTileM * hn::Lanes(df));
  if (state.size() < need) state.resize(need);
  // The activations packed chunk by chunk: for the tile of MT rows from
  // m0, chunk k0 / kChunk holds row i's values k0.. at packed + m0 k_pad +
  // k0 MT + i kChunk. Rows of n_in = 4096 floats sit 16 KB apart, so the
  // 8 rows of a tile (and the weight rows, 8 KB apart) all map to the same
  // L1 sets and evict each other; packed, a chunk is contiguous (up to 24
  // KB for 12 rows).
  const int64_t n = StepOf<kMath != TileMath::kFloat>(df);
  const int64_t k_vec = job.n_in / n * n;
  const int64_t k_pad =
      std::max<int64_t>(kChunk<X>, (k_vec + kChunk<X> - 1) / kChunk<X> * kChunk<X>);
  thread_local AlignedBuffer<X> packed;
  if (packed.size() < static_cast<size_t>(job.m * k_pad)) {
    packed.resize(static_cast<size_t>(job.m * k_pad));
  }
  for (int64_t m0 = 0; m0 < job.m; m0 += kFloatTileM) {
    const int64_t mt = std::min<int64_t>(kFloatTileM, job.m - m0);
    for (int64_t k0 = 0; k0 < k_vec; k0 += kChunk<X>) {
      const int64_t len = std::min(kChunk<X>, k_vec - k0);
      for (int64_t i = 0; i < mt; ++i) {
        X* to = packed.data() + m0 * k_pad + k0 * mt + i * kChunk<X>;
        const int64_t from = (m0 + i) * job.n_in + k0;
        if constexpr (kMath == TileMath::kBf16DotFma) {
          PackBf16OddEven(job.x_bf16 + from, len, to);
        } else if constexpr (kMath == TileMath::kBf16Dot) {
          std::copy(job.x_bf16 + from, job.x_bf16 + from + len, to);
        } else {
          std::copy(job.x + from, job.x + from + len, to);
        }
      }
    }
  }
  for (int64_t rb = row_begin; rb < row_end; rb += kRowBlock) {
    const int64_t re = std::min(rb + kRowBlock, row_end);
    for (int64_t m0 = 0; m0 < job.m; m0 += kFloatTileM) {
      const int mt = static_cast<int>(std::min<int64_t>(kFloatTileM, job.m - m0));
      WithCount<kFloatTileM>(mt, [&](auto rows) {
        FloatBlock<kType, decltype(rows)::value, kMath>(job, rb, re, m0, packed.data() + m0 * k_pad,
                                                        state.data(), m0 == 0 ? row_end : 0);
      });
    }
  }
}
