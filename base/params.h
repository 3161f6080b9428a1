// Declare-once parameters.
//
// A component's parameters are members of a ParamSet subclass; each member is
// declared exactly once with its key, default, unit, one-sentence doc and
// validators:
//
//   struct TlbParams : ParamSet {
//     using ParamSet::ParamSet;
//     Param<uint32_t> entries{this, "entries", 64, "entries", "Number of entries.",
//                             {min_value<uint32_t>(1)}};
//   };
//
// Reading JSON (unknown keys rejected with the closest valid key), writing the
// effective JSON, and `tlbsim params` are all generated from these declarations.
// The key is the member's name. Sets are non-copyable: members register their
// address with the owner at construction.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/size.h"

namespace tlbsim {

using Json = nlohmann::ordered_json;

class ParamSet;

/// One row of `tlbsim params`.
struct ParamInfo {
  std::string key;   // dotted path, e.g. "machine.tlb.l1d.entries"
  std::string type;  // "integer", "size", "string", ...
  std::string unit;
  std::string doc;
  Json default_value;
  std::vector<std::string> choices;  // for enumerated strings
  std::string range;                 // "min..max" for numbers and sizes
};

/// Type-erased parameter, owned by a ParamSet.
class ParamBase {
 public:
  ParamBase(ParamSet* owner, const char* key, const char* unit, const char* doc);
  ParamBase(const ParamBase&) = delete;
  ParamBase& operator=(const ParamBase&) = delete;
  virtual ~ParamBase() = default;

  const char* key() const { return m_key; }
  const char* unit() const { return m_unit; }
  const char* doc() const { return m_doc; }

  /// Reads and validates the value at `pointer`; throws InputError.
  virtual void load(const Json& j, const std::string& pointer) = 0;
  virtual Json to_json() const = 0;
  virtual Json default_json() const = 0;
  virtual std::string type_name() const = 0;
  virtual std::vector<std::string> choices() const { return {}; }
  /// "min..max" of a numeric parameter ("" for other types).
  virtual std::string range() const { return {}; }
  virtual void reset() = 0;

 private:
  const char* m_key;
  const char* m_unit;
  const char* m_doc;
};

/// A validator: a check returning an error message ("expected ...") or "", and the
/// bound it enforces when it is one (min_value, max_value), so that `tlbsim params`
/// prints every parameter's range from its declaration.
template <class T>
struct Validator {
  template <class F>
    requires std::is_invocable_r_v<std::string, F, const T&>
  Validator(F f) : check(std::move(f)) {}  // NOLINT: lambdas convert implicitly
  std::function<std::string(const T&)> check;
  std::optional<T> min, max;
};

namespace param_detail {
template <class T>
std::string type_name();
template <class T>
T from_json(const Json& j, const std::string& pointer);
template <class T>
Json to_json(const T& v);
std::string describe(const Json& j);
/// The range a unit implies ("cycles", "bytes", "GHz", "entries", "ways"): every
/// latency, size and clock is bounded even where its declaration names no bound.
std::optional<std::pair<double, double>> unit_range(const char* unit);
template <class T>
std::string format_bound(const T& v);
}  // namespace param_detail

template <class T>
Validator<T> min_value(T lo);
template <class T>
Validator<T> max_value(T hi);

/// True for the parameter types that have a numeric range.
template <class T>
constexpr bool kRangedParam =
    (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) || std::is_same_v<T, Bytes>;

template <class T>
class Param final : public ParamBase {
 public:
  Param(ParamSet* owner, const char* key, T def, const char* unit, const char* doc,
        std::vector<Validator<T>> validators = {})
      : ParamBase(owner, key, unit, doc),
        m_default(def),
        m_value(std::move(def)),
        m_validators(std::move(validators)) {
    if constexpr (kRangedParam<T>) add_unit_bounds();
  }

  const T& operator()() const { return m_value; }
  const T& value() const { return m_value; }
  void set(T v) { m_value = std::move(v); }
  /// Changes the declared default (for sets instantiated several times with
  /// different defaults, e.g. one TLB structure per level).
  void set_default(T v) {
    m_default = v;
    m_value = std::move(v);
  }

  void load(const Json& j, const std::string& pointer) override {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // A negative number for a parameter whose validators also reject 0 is best
      // described as "expected a positive integer".
      const bool not_positive =
          j.is_number_integer() && (j.is_number_unsigned() ? j.get<uint64_t>() == 0 : j.get<int64_t>() <= 0);
      if (not_positive && std::is_unsigned_v<T>) {
        for (const auto& v : m_validators)
          if (!v.check(T{0}).empty())
            throw InputError(pointer, "expected a positive integer, got " + param_detail::describe(j));
      }
    }
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      // An unsigned number beyond the signed type is out of the declared range.
      if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        for (const auto& v : m_validators)
          if (v.max)
            throw InputError(pointer, "expected a value <= " + param_detail::format_bound(*v.max) +
                                          ", got " + param_detail::describe(j));
    }
    T v = param_detail::from_json<T>(j, pointer);
    for (const auto& check : m_validators) {
      std::string err = check.check(v);
      if (!err.empty()) throw InputError(pointer, err + ", got " + param_detail::describe(j));
    }
    m_value = std::move(v);
  }
  Json to_json() const override { return param_detail::to_json(m_value); }
  Json default_json() const override { return param_detail::to_json(m_default); }
  std::string type_name() const override { return param_detail::type_name<T>(); }
  std::vector<std::string> choices() const override { return m_choices; }
  void reset() override { m_value = m_default; }
  std::string range() const override {
    if constexpr (kRangedParam<T>) {
      std::optional<T> lo, hi;
      for (const auto& v : m_validators) {
        if (v.min) lo = v.min;
        if (v.max) hi = v.max;
      }
      if (!lo && !hi) return {};
      return (lo ? param_detail::format_bound(*lo) : std::string()) + ".." +
             (hi ? param_detail::format_bound(*hi) : std::string());
    } else {
      return {};
    }
  }

  /// Restricts a string parameter to a fixed list (listed in messages and docs).
  Param& one_of(std::vector<std::string> choices)
    requires std::is_same_v<T, std::string>
  {
    m_choices = choices;
    m_validators.push_back([choices](const std::string& v) -> std::string {
      for (const auto& c : choices)
        if (c == v) return {};
      return "expected one of " + join_choices(choices);
    });
    return *this;
  }

 private:
  // A side the declaration leaves open takes the bound its unit implies.
  void add_unit_bounds() {
    const auto r = param_detail::unit_range(unit());
    if (!r) return;
    bool has_min = false, has_max = false;
    for (const auto& v : m_validators) {
      has_min |= v.min.has_value();
      has_max |= v.max.has_value();
    }
    auto as_t = [](double d) {
      if constexpr (std::is_same_v<T, Bytes>) return Bytes{static_cast<uint64_t>(d)};
      else return static_cast<T>(d);
    };
    if (!has_min) m_validators.push_back(min_value<T>(as_t(r->first)));
    if (!has_max) m_validators.push_back(max_value<T>(as_t(r->second)));
  }

  T m_default;
  T m_value;
  std::vector<Validator<T>> m_validators;
  std::vector<std::string> m_choices;
};

template <class T>
Validator<T> min_value(T lo) {
  Validator<T> v([lo](const T& x) -> std::string {
    if constexpr (std::is_same_v<T, Bytes>) {
      return x.value >= lo.value ? "" : "expected at least " + format_size(lo.value);
    } else {
      return x >= lo ? "" : "expected a value >= " + param_detail::format_bound(lo);
    }
  });
  v.min = lo;
  return v;
}
template <class T>
Validator<T> max_value(T hi) {
  Validator<T> v([hi](const T& x) -> std::string {
    if constexpr (std::is_same_v<T, Bytes>) {
      return x.value <= hi.value ? "" : "expected at most " + format_size(hi.value);
    } else {
      return x <= hi ? "" : "expected a value <= " + param_detail::format_bound(hi);
    }
  });
  v.max = hi;
  return v;
}
template <class T>
Validator<T> power_of_two() {
  return [](const T& v) -> std::string {
    uint64_t x;
    if constexpr (std::is_same_v<T, Bytes>) x = v.value;
    else x = static_cast<uint64_t>(v);
    return (x != 0 && (x & (x - 1)) == 0) ? "" : "expected a power of two";
  };
}

/// A group of parameters and nested groups; maps to one JSON object.
class ParamSet {
 public:
  /// Top-level set.
  explicit ParamSet(const char* doc = "") : m_doc(doc) {}
  /// Nested set: registers itself as `key` inside `parent`.
  ParamSet(ParamSet* parent, const char* key, const char* doc);
  ParamSet(const ParamSet&) = delete;
  ParamSet& operator=(const ParamSet&) = delete;
  virtual ~ParamSet() = default;

  /// Loads from a JSON object located at `pointer` (for messages). Keys not
  /// present keep their current value; unknown keys and keys starting with "_"
  /// are handled as documented in docs/config-reference.md ("_"-keys are comments).
  void load(const Json& j, const std::string& pointer = "");
  /// Effective values, every key present.
  Json to_json() const;
  /// Appends one row per parameter, keys prefixed by `prefix`.
  void describe(const std::string& prefix, std::vector<ParamInfo>& out) const;
  /// Restores every default.
  void reset();
  /// Cross-field validation after load; throw InputError with a pointer.
  virtual void validate(const std::string& pointer) const { (void)pointer; }
  /// validate() of this set and of every nested set, deepest first (after all
  /// layers — preset, file overrides, --set — are loaded, so that a set the last
  /// layer did not mention is still checked).
  void validate_all(const std::string& pointer = "") const;

  const char* key() const { return m_key; }
  const char* doc() const { return m_doc; }
  std::vector<std::string> keys() const;

 private:
  friend class ParamBase;
  const char* m_key = "";
  const char* m_doc = "";
  std::vector<ParamBase*> m_params;
  std::vector<ParamSet*> m_children;
};

/// Escapes a key for use in a JSON pointer (RFC 6901).
std::string json_pointer_escape(const std::string& key);

}  // namespace tlbsim
