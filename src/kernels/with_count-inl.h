// WithCount: a run-time count turned into a compile-time one, so that each
// tile size is its own instantiation (its accumulators in registers).
// Included once per target, inside the includer's HWY_NAMESPACE (the
// matmul and attention kernels), so that the calls inline into target
// code; it has no include guard for that reason.

// Calls f(std::integral_constant<int, n>{}) for a run-time n in [1, kMax].
template <int kMax, typename F>
HWY_INLINE void WithCount(int64_t n, const F& f) {
  if constexpr (kMax > 1) {
    if (n < kMax) return WithCount<kMax - 1>(n, f);
  }
  f(std::integral_constant<int, kMax>{});
}
