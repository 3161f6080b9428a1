// Declare-once statistics.
//
// Counters are plain members of a component; name, unit and description are
// attached once at construction, and ratios are Formulas evaluated at dump time:
//
//   struct TlbStats : StatGroup {
//     using StatGroup::StatGroup;
//     Scalar lookups{this, "lookups", "count", "Translations looked up."};
//     Scalar misses{this, "misses", "count", "Lookups that missed."};
//     Formula miss_rate{this, "miss_rate", "ratio", "misses / lookups.",
//                       [this] { return ratio(misses, lookups); }};
//   };
//
// Groups nest into a tree whose paths always index: "system.cpu[0].dtlb.misses".
// The hot path touches only `uint64_t` members; nothing is looked up by name.
// Groups and stats are non-copyable: they register their address with the parent.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tlbsim {

using Json = nlohmann::ordered_json;

class StatGroup;

/// One line of stats.csv.
struct StatRow {
  std::string path;
  std::string value;  // formatted number
  std::string unit;
};

class StatBase {
 public:
  StatBase(StatGroup* group, const char* name, const char* unit, const char* desc);
  StatBase(const StatBase&) = delete;
  StatBase& operator=(const StatBase&) = delete;
  virtual ~StatBase() = default;

  const char* name() const { return m_name; }
  const char* unit() const { return m_unit; }
  const char* desc() const { return m_desc; }

  virtual Json to_json() const = 0;
  virtual void rows(const std::string& path, std::vector<StatRow>& out) const = 0;
  virtual void reset() = 0;

 private:
  const char* m_name;
  const char* m_unit;
  const char* m_desc;
};

/// A plain 64-bit counter.
class Scalar final : public StatBase {
 public:
  using StatBase::StatBase;
  Scalar& operator++() { ++m_value; return *this; }
  Scalar& operator+=(uint64_t v) { m_value += v; return *this; }
  void set(uint64_t v) { m_value = v; }
  uint64_t value() const { return m_value; }
  operator uint64_t() const { return m_value; }  // NOLINT: reads like the counter it is

  Json to_json() const override;
  void rows(const std::string& path, std::vector<StatRow>& out) const override;
  void reset() override { m_value = 0; }

 private:
  uint64_t m_value = 0;
};

/// A counter kept elsewhere as a plain uint64_t member (e.g. inside a hot-path
/// structure); registered here with its name, unit and description.
class CounterRef final : public StatBase {
 public:
  CounterRef(StatGroup* group, const char* name, const char* unit, const char* desc,
             const uint64_t* counter)
      : StatBase(group, name, unit, desc), m_counter(counter) {}
  uint64_t value() const { return *m_counter; }
  Json to_json() const override;
  void rows(const std::string& path, std::vector<StatRow>& out) const override;
  void reset() override {}

 private:
  const uint64_t* m_counter;
};

/// A signed level that goes up and down (NR_ANON_MAPPED, queue lengths).
class Gauge final : public StatBase {
 public:
  using StatBase::StatBase;
  Gauge& operator+=(int64_t v) { m_value += v; return *this; }
  Gauge& operator-=(int64_t v) { m_value -= v; return *this; }
  void set(int64_t v) { m_value = v; }
  Gauge& operator++() { ++m_value; return *this; }
  Gauge& operator--() { --m_value; return *this; }
  int64_t value() const { return m_value; }
  operator int64_t() const { return m_value; }  // NOLINT

  Json to_json() const override;
  void rows(const std::string& path, std::vector<StatRow>& out) const override;
  void reset() override { m_value = 0; }

 private:
  int64_t m_value = 0;
};

/// A value computed from other stats when the tree is dumped.
class Formula final : public StatBase {
 public:
  Formula(StatGroup* group, const char* name, const char* unit, const char* desc,
          std::function<double()> fn)
      : StatBase(group, name, unit, desc), m_fn(std::move(fn)) {}
  double value() const { return m_fn(); }

  Json to_json() const override;
  void rows(const std::string& path, std::vector<StatRow>& out) const override;
  void reset() override {}

 private:
  std::function<double()> m_fn;
};

/// Distribution of samples in buckets: log2 buckets (bucket i holds [2^(i-1), 2^i),
/// bucket 0 holds 0) or linear buckets of a fixed width.
class Histogram final : public StatBase {
 public:
  enum class Kind { kLog2, kLinear };
  Histogram(StatGroup* group, const char* name, const char* unit, const char* desc,
            Kind kind = Kind::kLog2, uint64_t bucket_width = 1, unsigned buckets = 32);

  void sample(uint64_t v, uint64_t times = 1) {
    m_count += times;
    m_sum += v * times;
    if (v < m_min) m_min = v;
    if (v > m_max) m_max = v;
    m_buckets[bucket_of(v)] += times;
  }
  uint64_t count() const { return m_count; }
  uint64_t sum() const { return m_sum; }
  uint64_t min() const { return m_count ? m_min : 0; }
  uint64_t max() const { return m_max; }
  double mean() const { return m_count ? static_cast<double>(m_sum) / m_count : 0.0; }

  Json to_json() const override;
  void rows(const std::string& path, std::vector<StatRow>& out) const override;
  void reset() override;

 private:
  unsigned bucket_of(uint64_t v) const {
    unsigned b;
    if (m_kind == Kind::kLog2) b = v == 0 ? 0 : 64 - static_cast<unsigned>(__builtin_clzll(v));
    else b = static_cast<unsigned>(v / m_width);
    return b < m_buckets.size() ? b : static_cast<unsigned>(m_buckets.size() - 1);
  }
  std::pair<uint64_t, uint64_t> bucket_range(unsigned i) const;

  Kind m_kind;
  uint64_t m_width;
  std::vector<uint64_t> m_buckets;
  uint64_t m_count = 0, m_sum = 0, m_min = std::numeric_limits<uint64_t>::max(), m_max = 0;
};

/// A node of the stats tree.
class StatGroup {
 public:
  /// Root group.
  explicit StatGroup(std::string name);
  /// Child group: `name` may carry an index, e.g. "cpu[3]". A null parent makes a root.
  StatGroup(StatGroup* parent, std::string name);
  StatGroup(const StatGroup&) = delete;
  StatGroup& operator=(const StatGroup&) = delete;
  virtual ~StatGroup();

  const std::string& name() const { return m_name; }
  /// Full dotted path from the root.
  std::string path() const;

  /// The subtree as nested objects; leaves are {value, unit, desc}.
  Json to_json() const;
  /// The subtree flattened (for stats.csv).
  void rows(std::vector<StatRow>& out) const;
  /// Zeroes every counter in the subtree.
  void reset();
  /// Finds a stat by dotted path relative to this group ("dtlb.misses"); nullptr if absent.
  const StatBase* find(const std::string& relative_path) const;
  const StatGroup* find_group(const std::string& relative_path) const;

 private:
  friend class StatBase;
  void detach_child(StatGroup* child);
  std::string m_name;
  StatGroup* m_parent = nullptr;
  std::vector<StatBase*> m_stats;
  std::vector<StatGroup*> m_children;
};

/// a / b, or 0 when b is 0.
inline double ratio(uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / b : 0.0; }

/// Formats a double the way every output uses it (shortest round-trip, no locale).
std::string format_number(double v);

}  // namespace tlbsim
