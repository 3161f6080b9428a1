#include "base/params.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "base/json_text.h"

namespace tlbsim {

ParamBase::ParamBase(ParamSet* owner, const char* key, const char* unit, const char* doc)
    : m_key(key), m_unit(unit), m_doc(doc) {
  owner->m_params.push_back(this);
}

ParamSet::ParamSet(ParamSet* parent, const char* key, const char* doc) : m_key(key), m_doc(doc) {
  parent->m_children.push_back(this);
}

std::string json_pointer_escape(const std::string& key) {
  std::string s;
  for (char c : key) {
    if (c == '~') s += "~0";
    else if (c == '/') s += "~1";
    else s += c;
  }
  return s;
}

std::vector<std::string> ParamSet::keys() const {
  std::vector<std::string> k;
  for (auto* p : m_params) k.emplace_back(p->key());
  for (auto* c : m_children) k.emplace_back(c->key());
  return k;
}

void ParamSet::load(const Json& j, const std::string& pointer) {
  if (!j.is_object())
    throw InputError(pointer.empty() ? "/" : pointer,
                     "expected an object, got " + param_detail::describe(j));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (!k.empty() && k[0] == '_') continue;  // comment / source annotation
    const std::string ptr = pointer + "/" + json_pointer_escape(k);
    bool found = false;
    for (auto* p : m_params) {
      if (k == p->key()) {
        p->load(it.value(), ptr);
        found = true;
        break;
      }
    }
    if (found) continue;
    for (auto* c : m_children) {
      if (k == c->key()) {
        c->load(it.value(), ptr);
        found = true;
        break;
      }
    }
    if (found) continue;
    std::string msg = "unknown key \"" + k + "\"";
    std::string near = closest_match(k, keys());
    if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
    msg += "; valid keys: " + join_choices(keys());
    throw InputError(ptr, msg);
  }
  validate(pointer);
}

void ParamSet::validate_all(const std::string& pointer) const {
  for (auto* c : m_children) c->validate_all(pointer + "/" + json_pointer_escape(c->key()));
  validate(pointer);
}

Json ParamSet::to_json() const {
  Json j = Json::object();
  for (auto* p : m_params) j[p->key()] = p->to_json();
  for (auto* c : m_children) j[c->key()] = c->to_json();
  return j;
}

void ParamSet::describe(const std::string& prefix, std::vector<ParamInfo>& out) const {
  for (auto* p : m_params) {
    out.push_back(ParamInfo{prefix + p->key(), p->type_name(), p->unit(), p->doc(),
                            p->default_json(), p->choices(), p->range()});
  }
  for (auto* c : m_children) c->describe(prefix + c->key() + ".", out);
}

void ParamSet::reset() {
  for (auto* p : m_params) p->reset();
  for (auto* c : m_children) c->reset();
}

namespace param_detail {

std::string describe(const Json& j) {
  switch (j.type()) {
    case Json::value_t::string: return "the string " + json_excerpt(j);
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    default: return json_excerpt(j);
  }
}

std::optional<std::pair<double, double>> unit_range(const char* unit) {
  // A latency of 2^24 cycles (6.7 ms at 2.5 GHz) is far beyond any hardware or
  // kernel cost and keeps every sum of them far from wrapping 64 bits; a cache or
  // buffer of 2 GiB is beyond any shipped machine (and its tags fit the host).
  static const struct {
    const char* unit;
    double min, max;
  } kUnits[] = {
      {"cycles", 0, 16777216.0},
      {"GHz", 0.01, 100.0},
      {"bytes", 0, 2147483648.0},
      {"entries", 0, 1048576.0},
      {"ways", 1, 1048576.0},
  };
  for (const auto& u : kUnits)
    if (std::string_view(unit) == u.unit) return std::make_pair(u.min, u.max);
  return std::nullopt;
}

template <>
std::string format_bound<uint32_t>(const uint32_t& v) { return std::to_string(v); }
template <>
std::string format_bound<uint64_t>(const uint64_t& v) { return std::to_string(v); }
template <>
std::string format_bound<int64_t>(const int64_t& v) { return std::to_string(v); }
template <>
std::string format_bound<double>(const double& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
template <>
std::string format_bound<Bytes>(const Bytes& v) { return format_size(v.value); }

template <>
std::string type_name<bool>() { return "boolean"; }
template <>
std::string type_name<uint32_t>() { return "integer"; }
template <>
std::string type_name<uint64_t>() { return "integer"; }
template <>
std::string type_name<int64_t>() { return "integer"; }
template <>
std::string type_name<double>() { return "number"; }
template <>
std::string type_name<std::string>() { return "string"; }
template <>
std::string type_name<Bytes>() { return "size"; }

template <>
bool from_json<bool>(const Json& j, const std::string& ptr) {
  if (!j.is_boolean()) throw InputError(ptr, "expected true or false, got " + describe(j));
  return j.get<bool>();
}

namespace {
template <class I>
I integer_from_json(const Json& j, const std::string& ptr) {
  const bool is_unsigned = std::is_unsigned_v<I>;
  const std::string want = is_unsigned ? "a non-negative integer" : "an integer";
  if (j.is_number_float()) {
    // 1e30 is an integer too, but no 64-bit one: check before converting.
    const double d = j.get<double>();
    if (std::floor(d) != d || (is_unsigned && d < 0))
      throw InputError(ptr, "expected " + want + ", got " + describe(j));
    if (d < static_cast<double>(std::numeric_limits<I>::min()) ||
        d >= std::ldexp(1.0, std::numeric_limits<I>::digits))
      throw InputError(ptr, "expected " + want + " that fits in " +
                                std::to_string(sizeof(I) * 8) + " bits, got " + describe(j));
    return static_cast<I>(d);
  } else if (!j.is_number_integer()) {
    throw InputError(ptr, "expected " + want + ", got " + describe(j));
  }
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<I>::max()))
      throw InputError(ptr, "expected " + want + " that fits in " +
                                std::to_string(sizeof(I) * 8) + " bits, got " + describe(j));
    return static_cast<I>(u);
  }
  const int64_t v = j.get<int64_t>();
  if (is_unsigned && v < 0) throw InputError(ptr, "expected " + want + ", got " + describe(j));
  if constexpr (!std::is_same_v<I, int64_t> && !std::is_same_v<I, uint64_t>) {
    if (v > static_cast<int64_t>(std::numeric_limits<I>::max()))
      throw InputError(ptr, "expected " + want + " that fits in " +
                                std::to_string(sizeof(I) * 8) + " bits, got " + describe(j));
  }
  return static_cast<I>(v);
}
}  // namespace

template <>
uint32_t from_json<uint32_t>(const Json& j, const std::string& ptr) {
  return integer_from_json<uint32_t>(j, ptr);
}
template <>
uint64_t from_json<uint64_t>(const Json& j, const std::string& ptr) {
  return integer_from_json<uint64_t>(j, ptr);
}
template <>
int64_t from_json<int64_t>(const Json& j, const std::string& ptr) {
  return integer_from_json<int64_t>(j, ptr);
}
template <>
double from_json<double>(const Json& j, const std::string& ptr) {
  if (!j.is_number()) throw InputError(ptr, "expected a number, got " + describe(j));
  return j.get<double>();
}
template <>
std::string from_json<std::string>(const Json& j, const std::string& ptr) {
  if (!j.is_string()) throw InputError(ptr, "expected a string, got " + describe(j));
  return j.get<std::string>();
}
template <>
Bytes from_json<Bytes>(const Json& j, const std::string& ptr) {
  if (j.is_number_integer() || j.is_number_unsigned()) {
    if (j.is_number_integer() && !j.is_number_unsigned() && j.get<int64_t>() < 0)
      throw InputError(ptr, "expected a size such as \"4KiB\", got " + describe(j));
    return Bytes{j.get<uint64_t>()};
  }
  if (!j.is_string())
    throw InputError(ptr, "expected a size such as \"4KiB\" or \"1GiB\", got " + describe(j));
  std::string why;
  auto v = parse_size(j.get<std::string>(), &why);
  if (!v) throw InputError(ptr, "expected a size such as \"4KiB\" or \"1GiB\" (" + why +
                                    "), got " + describe(j));
  return Bytes{*v};
}

template <>
Json to_json<bool>(const bool& v) { return v; }
template <>
Json to_json<uint32_t>(const uint32_t& v) { return v; }
template <>
Json to_json<uint64_t>(const uint64_t& v) { return v; }
template <>
Json to_json<int64_t>(const int64_t& v) { return v; }
template <>
Json to_json<double>(const double& v) { return v; }
template <>
Json to_json<std::string>(const std::string& v) { return v; }
template <>
Json to_json<Bytes>(const Bytes& v) { return format_size(v.value); }

}  // namespace param_detail
}  // namespace tlbsim
