// Zipf sampling without a table: rejection-inversion (W. Hörmann and G. Derflinger,
// "Rejection-inversion to generate variates from monotone discrete distributions",
// ACM TOMACS 6(3), 1996), in the formulation of Apache Commons RNG's
// RejectionInversionZipfSampler. Ranks 1..n with P(k) ∝ k^-theta, for any n up to
// 2^53 and any theta > 0, in O(1) memory and expected O(1) time: a touch op's
// "pattern": "zipf" over a 100 TiB window needs no per-page CDF.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tlbsim::workload {

class ZipfSampler {
 public:
  /// Ranks 1..`n` (n >= 1), exponent `theta` > 0.
  ZipfSampler(uint64_t n, double theta)
      : m_n(n),
        m_theta(theta),
        m_h_integral_x1(h_integral(1.5) - 1.0),
        m_h_integral_n(h_integral(static_cast<double>(n) + 0.5)),
        m_s(2.0 - h_integral_inverse(h_integral(2.5) - h(2.0))) {}

  /// One rank in [1, n]. `uniform()` returns doubles uniform in [0, 1); the same
  /// stream gives the same ranks (no other state is kept).
  template <class Uniform>
  uint64_t operator()(Uniform&& uniform) const {
    for (;;) {
      // u is uniform in (h_integral(1.5) - 1, h_integral(n + 0.5)].
      const double u = m_h_integral_n + uniform() * (m_h_integral_x1 - m_h_integral_n);
      const double x = h_integral_inverse(u);
      const double kd = std::clamp(std::floor(x + 0.5), 1.0, static_cast<double>(m_n));
      const uint64_t k = static_cast<uint64_t>(kd);
      // Accept when the point falls under the histogram of P(k): the cheap test
      // first, then the exact one.
      if (kd - x <= m_s || u >= h_integral(kd + 0.5) - h(kd)) return k;
    }
  }

  uint64_t n() const { return m_n; }
  double theta() const { return m_theta; }

 private:
  // h(x) = x^-theta, the density the histogram is compared with.
  double h(double x) const { return std::exp(-m_theta * std::log(x)); }
  // H(x) = ∫ h = (x^(1-theta) - 1) / (1 - theta), and log(x) for theta = 1.
  double h_integral(double x) const {
    const double log_x = std::log(x);
    return helper2((1.0 - m_theta) * log_x) * log_x;
  }
  double h_integral_inverse(double x) const {
    double t = x * (1.0 - m_theta);
    if (t < -1.0) t = -1.0;  // rounding near the lower end
    return std::exp(helper1(t) * x);
  }
  // log1p(x) / x and expm1(x) / x, continuous at 0.
  static double helper1(double x) {
    return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
  }
  static double helper2(double x) {
    return std::abs(x) > 1e-8 ? std::expm1(x) / x
                              : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
  }

  uint64_t m_n;
  double m_theta;
  double m_h_integral_x1;  // H(1.5) - h(1)
  double m_h_integral_n;   // H(n + 0.5)
  double m_s;              // the squeeze: 2 - H^-1(H(2.5) - h(2))
};

}  // namespace tlbsim::workload
