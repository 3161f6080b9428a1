#include "workloads/substitute.h"

#include <algorithm>
#include <functional>
#include <memory>

#include "workloads/object_reader.h"

namespace tlbsim::workload::detail {

namespace {

/// "${name}" in a string replaced by the parameter's value: a string that is
/// exactly "${name}" takes the parameter's JSON value (so numbers stay numbers),
/// otherwise the value's text is spliced in. `where` gives the pointer on error.
Json substitute_string(const std::string& s, const Json& params,
                       const std::function<std::string()>& where,
                       const std::vector<std::string>& indices) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t open = s.find("${", i);
    if (open == std::string::npos) {
      out += s.substr(i);
      break;
    }
    size_t close = s.find('}', open);
    if (close == std::string::npos)
      throw InputError(where(), "unterminated ${...} in " + quote_excerpt(s));
    const std::string name = s.substr(open + 2, close - open - 2);
    auto deferred = [&](const std::string& n) {
      return std::find(indices.begin(), indices.end(), n) != indices.end();
    };
    if (has_expr_operator(name)) {
      // "${size / n}": integer arithmetic on parameters, numbers and sizes.
      bool later = false;
      for (const auto& n : expr_names(name)) later |= deferred(n);
      if (later) {  // names an index of an enclosing repeat or template: substituted then
        out += s.substr(i, close + 1 - i);
        i = close + 1;
        continue;
      }
      std::string why;
      auto x = eval_int_expr(
          name,
          [&](std::string_view n, std::string* w) -> std::optional<uint64_t> {
            auto p = params.find(std::string(n));
            if (p == params.end()) {
              *w = "unknown workload parameter \"" + std::string(n.substr(0, 64)) + "\"";
              return std::nullopt;
            }
            if (p->is_number_unsigned()) return p->get<uint64_t>();
            if (p->is_string())
              if (auto v = parse_size(p->get_ref<const std::string&>())) return v;
            *w = "parameter \"" + std::string(n) + "\" is " + json_excerpt(*p) +
                 ", not a non-negative integer or size";
            return std::nullopt;
          },
          &why);
      if (!x) throw InputError(where(), "in " + quote_excerpt(s) + ": " + why);
      if (open == 0 && close + 1 == s.size()) return *x;  // the whole string: a number
      out += s.substr(i, open - i);
      out += std::to_string(*x);
      i = close + 1;
      continue;
    }
    if (deferred(name)) {
      out += s.substr(i, close + 1 - i);  // an enclosing repeat's index (it shadows a
      i = close + 1;                      // parameter of that name): substituted later
      continue;
    }
    auto it = params.find(name);
    if (it == params.end()) {
      std::vector<std::string> known;
      for (auto p = params.begin(); p != params.end(); ++p) known.push_back(p.key());
      throw InputError(where(), "unknown workload parameter " + quote_excerpt(name) +
                                    (known.empty() ? "; the workload declares no \"params\""
                                                   : "; declared: " + join_choices(known)));
    }
    if (open == 0 && close + 1 == s.size()) return *it;  // the whole string: keep the type
    out += s.substr(i, open - i);
    out += it->is_string() ? it->get<std::string>() : it->dump();
    i = close + 1;
  }
  return out;
}

}  // namespace

// Without recursion: the pointer of a value is built only for a message.
void substitute(Json& doc, const Json& params, const std::string& pointer) {
  // The index of a repeat is substituted when the repeat is expanded: inside its
  // "ops", "${index}" stays as it is.
  using Indices = std::shared_ptr<const std::vector<std::string>>;
  // Likewise the index of a thread or process template ({"count": N, ...} in
  // "threads" or "processes"): it stays in every key of the template but "count".
  enum Slot : uint8_t { kPlain, kTemplateList, kTemplate };
  struct Item {
    Json* value;
    size_t depth;     // of `value` below `doc`
    std::string key;  // its key or index in its parent (escaped)
    Indices indices;  // the enclosing repeats' and templates' index names
    Slot slot;        // kTemplateList: the value of "threads"/"processes"
  };
  std::vector<Item> todo{{&doc, 0, "", std::make_shared<const std::vector<std::string>>(), kPlain}};
  std::vector<std::string> path;  // keys from `doc` down to the current value
  while (!todo.empty()) {
    Item item = std::move(todo.back());
    todo.pop_back();
    path.resize(item.depth);
    if (item.depth) path[item.depth - 1] = item.key;
    Json& v = *item.value;
    if (v.is_object()) {
      Indices inner = item.indices;
      const bool repeat = v.contains("op") && v["op"] == "repeat";
      const bool templ =
          (item.slot == kTemplateList || item.slot == kTemplate) && v.contains("count");
      if (repeat || templ) {
        auto ix = v.find("index");
        auto grown = std::make_shared<std::vector<std::string>>(*item.indices);
        grown->push_back(ix != v.end() && ix->is_string() ? ix->get<std::string>() : "i");
        inner = std::move(grown);
      }
      for (auto it = v.begin(); it != v.end(); ++it) {
        const bool indexed = repeat ? it.key() == "ops" : templ && it.key() != "count";
        const Slot slot = it.key() == "threads" || it.key() == "processes" ? kTemplateList : kPlain;
        todo.push_back({&it.value(), item.depth + 1, json_pointer_escape(it.key()),
                        indexed ? inner : item.indices, slot});
      }
    } else if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i)
        todo.push_back({&v[i], item.depth + 1, std::to_string(i), item.indices,
                        item.slot == kTemplateList ? kTemplate : kPlain});
    } else if (v.is_string() && v.get_ref<const std::string&>().find("${") != std::string::npos) {
      const std::string s = v.get<std::string>();
      v = substitute_string(
          s, params,
          [&] {
            std::string p = pointer;
            for (const auto& k : path) p += "/" + k;
            return p.empty() ? std::string("/") : p;
          },
          *item.indices);
    }
  }
}

InputError in_copy(const InputError& e, const Expanded& x) {
  if (x.copy.empty() || e.message().find("(in the copy with ") != std::string::npos) return e;
  return InputError(e.where(), e.message() + " (in the copy with " + x.copy + ")", e.file());
}

std::vector<Expanded> expand_templates(const Json& list, const std::string& ptr, const Json& env,
                                       const char* what, const std::string& outer) {
  std::vector<std::pair<const Json*, std::string>> items;
  if (list.is_object()) {
    if (!list.contains("count"))
      throw InputError(ptr, std::string("expected an array of ") + what + "s or a " + what +
                                " template with a \"count\", got an object without one");
    items.emplace_back(&list, ptr);
  } else if (list.is_array() && !list.empty()) {
    for (size_t i = 0; i < list.size(); ++i)
      items.emplace_back(&list[i], ptr + "/" + std::to_string(i));
  } else {
    throw InputError(
        ptr, std::string("expected a non-empty array of ") + what + "s, got " + json_excerpt(list));
  }
  std::vector<Expanded> out;
  for (const auto& [j, iptr] : items) {
    if (!j->is_object() || !j->contains("count")) {
      out.push_back({*j, iptr, env, outer});
      continue;
    }
    ObjectReader r(*j, iptr, what);
    const uint64_t count = r.uint("count", 0, 1, kMaxTemplateCount);
    const std::string index = r.name("index", false, "i");
    Json body = *j;
    body.erase("count");
    body.erase("index");
    for (uint64_t k = 0; k < count; ++k) {
      Expanded e{body, iptr, env,
                 (outer.empty() ? "" : outer + ", ") + index + " = " + std::to_string(k)};
      e.env[index] = k;
      try {
        substitute(e.value, e.env, iptr);
      } catch (const InputError& err) {
        throw in_copy(err, e);
      }
      out.push_back(std::move(e));
    }
    if (out.size() > kMaxTemplateCount)
      throw InputError(r.ptr("count"), std::string("more than ") +
                                           std::to_string(kMaxTemplateCount) + " " + what + "s");
  }
  return out;
}

}  // namespace tlbsim::workload::detail
