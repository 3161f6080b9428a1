// A set of CPU numbers (mm_cpumask, flush target sets). Iteration is in
// ascending CPU order, which keeps IPI delivery deterministic.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tlbsim {

class CpuMask {
 public:
  CpuMask() = default;
  explicit CpuMask(unsigned nr_cpus) : m_words((nr_cpus + 63) / 64, 0) {}

  void resize(unsigned nr_cpus) { m_words.resize((nr_cpus + 63) / 64, 0); }
  void set(unsigned cpu) {
    if (cpu / 64 >= m_words.size()) m_words.resize(cpu / 64 + 1, 0);
    m_words[cpu / 64] |= uint64_t{1} << (cpu % 64);
  }
  void clear(unsigned cpu) {
    if (cpu / 64 < m_words.size()) m_words[cpu / 64] &= ~(uint64_t{1} << (cpu % 64));
  }
  bool test(unsigned cpu) const {
    return cpu / 64 < m_words.size() && (m_words[cpu / 64] >> (cpu % 64)) & 1;
  }
  void clear_all() {
    for (auto& w : m_words) w = 0;
  }
  unsigned count() const {
    unsigned n = 0;
    for (auto w : m_words) n += static_cast<unsigned>(std::popcount(w));
    return n;
  }
  bool empty() const {
    for (auto w : m_words)
      if (w) return false;
    return true;
  }
  /// True if any CPU other than `cpu` is set.
  bool any_other_than(unsigned cpu) const {
    for (size_t i = 0; i < m_words.size(); ++i) {
      uint64_t w = m_words[i];
      if (i == cpu / 64) w &= ~(uint64_t{1} << (cpu % 64));
      if (w) return true;
    }
    return false;
  }
  CpuMask& operator|=(const CpuMask& o) {
    if (o.m_words.size() > m_words.size()) m_words.resize(o.m_words.size(), 0);
    for (size_t i = 0; i < o.m_words.size(); ++i) m_words[i] |= o.m_words[i];
    return *this;
  }
  template <class F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < m_words.size(); ++i) {
      uint64_t w = m_words[i];
      while (w) {
        unsigned b = static_cast<unsigned>(std::countr_zero(w));
        f(static_cast<unsigned>(i * 64 + b));
        w &= w - 1;
      }
    }
  }

 private:
  std::vector<uint64_t> m_words;
};

}  // namespace tlbsim
