// Whole-workload checks of the reader (workload_reader.cpp): barrier uses that
// would wait forever, and the pre-pass that lets a thread use a mapping another
// thread of its process creates.
#include "workloads/workload_checks.h"

#include <algorithm>
#include <optional>

#include "base/error.h"
#include "base/json_text.h"
#include "base/size.h"

namespace tlbsim::workload::detail {

namespace {

/// A size written as a literal (a number or a size string), or nullopt.
std::optional<uint64_t> literal_size(const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string()) return parse_size(v.get_ref<const std::string&>());
  return std::nullopt;
}

/// How one participant (a thread or a forked child) uses barrier `name`: whether it
/// names it at all (System counts it as a participant then) and how many uses it
/// reaches before its first `exit`; forked children are participants of their own.
struct BarrierUse {
  bool named = false;
  size_t reached = 0;
  bool exited = false;
  const Op* first = nullptr;
};
void barrier_uses(const std::vector<Op>& ops, const std::string& name, BarrierUse& u) {
  for (const auto& op : ops) {
    if (op.kind == OpKind::kExit) u.exited = true;
    if (op.kind == OpKind::kBarrier && op.name == name) {
      u.named = true;
      if (!u.first) u.first = &op;
      if (!u.exited) ++u.reached;
    }
    if (op.kind == OpKind::kRegion) barrier_uses(op.body, name, u);
  }
}

/// Every participant of a barrier, as System counts them: workload threads and the
/// children forked by their top-level ops or regions.
void participants(const std::vector<Op>& ops, std::vector<const std::vector<Op>*>& out) {
  out.push_back(&ops);
  for (const auto& op : ops) {
    if (op.kind == OpKind::kFork) participants(op.body, out);
    if (op.kind == OpKind::kRegion)
      for (const auto& inner : op.body)
        if (inner.kind == OpKind::kFork) participants(inner.body, out);
  }
}

/// A barrier completes when every participant that uses its name arrives; one that
/// uses it fewer times than another leaves the other waiting forever.
std::string times(size_t n) {
  return n == 0 ? "never" : n == 1 ? "once" : std::to_string(n) + " times";
}

}  // namespace

void check_barriers(const Workload& w, const std::set<std::string>& names) {
  std::vector<const std::vector<Op>*> all;
  for (const auto& p : w.processes)
    for (const auto& t : p.threads) participants(t.ops, all);
  for (const auto& name : names) {
    const BarrierUse* most = nullptr;
    const BarrierUse* least = nullptr;
    std::vector<BarrierUse> uses(all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      barrier_uses(*all[i], name, uses[i]);
      if (!uses[i].named) continue;
      if (!most || uses[i].reached > most->reached) most = &uses[i];
      if (!least || uses[i].reached < least->reached) least = &uses[i];
    }
    if (most && most->reached != least->reached)
      throw InputError(most->first->pointer + "/name",
                       "barrier " + quote_excerpt(name) + " is reached " + times(most->reached) +
                           " by this thread but " + times(least->reached) +
                           " by another that names it (uses after an exit do not count): the "
                           "last uses would wait forever");
  }
}

/// The mmaps of each thread with a literal name and size, outside forked children:
/// name → (size, thread index). Looked at only for names the reading order has
/// not met yet.
std::map<std::string, std::pair<uint64_t, size_t>> thread_mmaps(const std::vector<Expanded>& ts) {
  std::map<std::string, std::pair<uint64_t, size_t>> out;
  std::map<std::pair<std::string, size_t>, uint64_t> resized;  // mremaps by their own thread
  for (size_t ti = 0; ti < ts.size(); ++ti) {
    auto it = ts[ti].value.find("ops");
    if (it == ts[ti].value.end()) continue;
    std::vector<const Json*> todo{&*it};
    while (!todo.empty()) {
      const Json* j = todo.back();
      todo.pop_back();
      if (j->is_array()) {
        for (const auto& e : *j) todo.push_back(&e);
        continue;
      }
      if (!j->is_object()) continue;
      auto op = j->find("op");
      if (op == j->end() || !op->is_string()) continue;
      if (*op == "mmap") {
        auto n = j->find("name");
        auto sz = j->find("size");
        if (n == j->end() || !n->is_string() || sz == j->end()) continue;
        const std::string& name = n->get_ref<const std::string&>();
        if (name.find("${") != std::string::npos) continue;
        const std::optional<uint64_t> size = literal_size(*sz);
        if (size && *size) out.emplace(name, std::make_pair(*size, ti));
      } else if (*op == "mremap") {
        auto n = j->find("mapping");
        auto sz = j->find("size");
        if (n == j->end() || !n->is_string() || sz == j->end()) continue;
        if (const std::optional<uint64_t> size = literal_size(*sz)) {
          uint64_t& s = resized[{n->get_ref<const std::string&>(), ti}];
          s = std::max(s, *size);
        }
      } else if (*op == "region" || *op == "repeat") {
        if (auto b = j->find("ops"); b != j->end()) todo.push_back(&*b);
      }
    }
  }
  // A mapping its thread resizes: other threads may use it up to the largest size.
  for (const auto& [key, size] : resized)
    if (auto at = out.find(key.first); at != out.end() && at->second.second == key.second)
      at->second.first = std::max(at->second.first, size);
  return out;
}

}  // namespace tlbsim::workload::detail
