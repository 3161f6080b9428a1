#include "base/stats.h"

#include <charconv>
#include <cmath>

namespace tlbsim {

StatBase::StatBase(StatGroup* group, const char* name, const char* unit, const char* desc)
    : m_name(name), m_unit(unit), m_desc(desc) {
  group->m_stats.push_back(this);
}

std::string format_number(double v) {
  if (std::isnan(v) || std::isinf(v)) return "0";
  if (std::floor(v) == v && std::fabs(v) < 9.007199254740992e15)
    return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 10);
  return std::string(buf, res.ptr);
}

static Json leaf(const StatBase& s, Json value) {
  Json j = Json::object();
  j["value"] = std::move(value);
  j["unit"] = s.unit();
  j["desc"] = s.desc();
  return j;
}

Json Scalar::to_json() const { return leaf(*this, m_value); }
void Scalar::rows(const std::string& path, std::vector<StatRow>& out) const {
  out.push_back({path, std::to_string(m_value), unit()});
}

Json CounterRef::to_json() const { return leaf(*this, *m_counter); }
void CounterRef::rows(const std::string& path, std::vector<StatRow>& out) const {
  out.push_back({path, std::to_string(*m_counter), unit()});
}

Json Gauge::to_json() const { return leaf(*this, m_value); }
void Gauge::rows(const std::string& path, std::vector<StatRow>& out) const {
  out.push_back({path, std::to_string(m_value), unit()});
}

Json Formula::to_json() const {
  double v = value();
  if (std::isnan(v) || std::isinf(v)) v = 0;
  // Round to 10 significant digits so dumps are stable across platforms.
  return leaf(*this, std::stod(format_number(v)));
}
void Formula::rows(const std::string& path, std::vector<StatRow>& out) const {
  out.push_back({path, format_number(value()), unit()});
}

Histogram::Histogram(StatGroup* group, const char* name, const char* unit, const char* desc,
                     Kind kind, uint64_t bucket_width, unsigned buckets)
    : StatBase(group, name, unit, desc),
      m_kind(kind),
      m_width(bucket_width ? bucket_width : 1),
      m_buckets(kind == Kind::kLog2 ? 65 : buckets, 0) {}

std::pair<uint64_t, uint64_t> Histogram::bucket_range(unsigned i) const {
  if (m_kind == Kind::kLog2) {
    if (i == 0) return {0, 1};
    uint64_t lo = uint64_t{1} << (i - 1);
    uint64_t hi = i >= 64 ? std::numeric_limits<uint64_t>::max() : (uint64_t{1} << i);
    return {lo, hi};
  }
  uint64_t lo = i * m_width;
  uint64_t hi = (i + 1 == m_buckets.size()) ? std::numeric_limits<uint64_t>::max()
                                            : lo + m_width;
  return {lo, hi};
}

Json Histogram::to_json() const {
  Json buckets = Json::array();
  for (unsigned i = 0; i < m_buckets.size(); ++i) {
    if (!m_buckets[i]) continue;
    auto [lo, hi] = bucket_range(i);
    buckets.push_back(Json{{"lo", lo}, {"hi", hi}, {"count", m_buckets[i]}});
  }
  Json v = Json::object();
  v["count"] = m_count;
  v["sum"] = m_sum;
  v["min"] = min();
  v["max"] = m_max;
  v["mean"] = std::stod(format_number(mean()));
  v["buckets"] = std::move(buckets);
  return leaf(*this, std::move(v));
}

void Histogram::rows(const std::string& path, std::vector<StatRow>& out) const {
  out.push_back({path + ".count", std::to_string(m_count), "count"});
  out.push_back({path + ".sum", std::to_string(m_sum), unit()});
  out.push_back({path + ".min", std::to_string(min()), unit()});
  out.push_back({path + ".max", std::to_string(m_max), unit()});
  out.push_back({path + ".mean", format_number(mean()), unit()});
}

void Histogram::reset() {
  std::fill(m_buckets.begin(), m_buckets.end(), 0);
  m_count = m_sum = m_max = 0;
  m_min = std::numeric_limits<uint64_t>::max();
}

StatGroup::StatGroup(std::string name) : m_name(std::move(name)) {}

StatGroup::StatGroup(StatGroup* parent, std::string name)
    : m_name(std::move(name)), m_parent(parent) {
  if (parent) parent->m_children.push_back(this);
}

StatGroup::~StatGroup() {
  if (m_parent) m_parent->detach_child(this);
  for (auto* c : m_children) c->m_parent = nullptr;
}

void StatGroup::detach_child(StatGroup* child) {
  std::erase(m_children, child);
}

std::string StatGroup::path() const {
  if (!m_parent) return m_name;
  std::string p = m_parent->path();
  return p.empty() ? m_name : p + "." + m_name;
}

Json StatGroup::to_json() const {
  Json j = Json::object();
  for (auto* s : m_stats) j[s->name()] = s->to_json();
  for (auto* c : m_children) j[c->name()] = c->to_json();
  return j;
}

void StatGroup::rows(std::vector<StatRow>& out) const {
  const std::string base = path();
  for (auto* s : m_stats) s->rows(base.empty() ? s->name() : base + "." + s->name(), out);
  for (auto* c : m_children) c->rows(out);
}

void StatGroup::reset() {
  for (auto* s : m_stats) s->reset();
  for (auto* c : m_children) c->reset();
}

const StatGroup* StatGroup::find_group(const std::string& rel) const {
  if (rel.empty()) return this;
  size_t dot = rel.find('.');
  std::string head = rel.substr(0, dot);
  for (auto* c : m_children)
    if (c->name() == head) return dot == std::string::npos ? c : c->find_group(rel.substr(dot + 1));
  return nullptr;
}

const StatBase* StatGroup::find(const std::string& rel) const {
  size_t dot = rel.rfind('.');
  const StatGroup* g = dot == std::string::npos ? this : find_group(rel.substr(0, dot));
  if (!g) return nullptr;
  std::string leaf_name = dot == std::string::npos ? rel : rel.substr(dot + 1);
  for (auto* s : g->m_stats)
    if (leaf_name == s->name()) return s;
  return nullptr;
}

}  // namespace tlbsim
