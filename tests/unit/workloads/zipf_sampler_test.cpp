#include "workloads/zipf_sampler.h"

#include <gtest/gtest.h>

#include <vector>

namespace tlbsim::workload {
namespace {

// A deterministic uniform [0, 1) stream (splitmix64, as the CPU model uses).
struct Uniform {
  uint64_t state;
  size_t draws = 0;
  double operator()() {
    ++draws;
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }
};

// Regression (issue 16 item 8): Zipf sampling built an 8-byte-per-page CDF of the
// whole window (2.1 GB for 1 TiB). The sampler must match the exact distribution.
TEST(ZipfSampler, MatchesTheExactProbabilitiesForSmallN) {
  for (double theta : {0.5, 0.99, 1.0, 1.5, 3.0}) {
    for (uint64_t n : {1ull, 2ull, 7ull, 20ull}) {
      const ZipfSampler zipf(n, theta);
      std::vector<double> p(n + 1);
      double sum = 0;
      for (uint64_t k = 1; k <= n; ++k) sum += p[k] = std::pow(static_cast<double>(k), -theta);
      std::vector<uint64_t> hits(n + 1);
      Uniform u{static_cast<uint64_t>(theta * 1000) + n};
      const uint64_t samples = 400000;
      for (uint64_t i = 0; i < samples; ++i) {
        const uint64_t k = zipf(u);
        ASSERT_GE(k, 1u);
        ASSERT_LE(k, n);
        ++hits[k];
      }
      // Pearson's chi-square against the exact probabilities; the 0.999 quantile of
      // chi-square with 19 degrees of freedom is 43.8.
      double chi2 = 0;
      for (uint64_t k = 1; k <= n; ++k) {
        const double expect = samples * p[k] / sum;
        chi2 += (hits[k] - expect) * (hits[k] - expect) / expect;
      }
      EXPECT_LT(chi2, 43.8) << "n=" << n << " theta=" << theta;
      EXPECT_LT(static_cast<double>(u.draws) / samples, 1.5)
          << "uniforms per sample, n=" << n << " theta=" << theta;
    }
  }
}

TEST(ZipfSampler, SameStreamGivesTheSameRanks) {
  const ZipfSampler zipf(1000, 0.99);
  Uniform a{42}, b{42};
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(zipf(a), zipf(b));
}

TEST(ZipfSampler, HugeWindowsNeedNoTable) {
  // 100 TiB of 4 KiB pages: 2^35 ranks, sampled in constant memory.
  const uint64_t n = (100ull << 40) >> 12;
  const ZipfSampler zipf(n, 0.99);
  Uniform u{7};
  uint64_t ones = 0, top = 0;
  for (int i = 0; i < 100000; ++i) {
    const uint64_t k = zipf(u);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, n);
    ones += k == 1;
    top = std::max(top, k);
  }
  // P(1) = 1 / H(n, 0.99) ≈ 1 / 28.0 for n = 2^35.
  EXPECT_NEAR(ones / 100000.0, 0.0357, 0.003);
  EXPECT_GT(top, 1000000u) << "the tail is reached";
  static_assert(sizeof(ZipfSampler) <= 64, "no table inside");
}

}  // namespace
}  // namespace tlbsim::workload
