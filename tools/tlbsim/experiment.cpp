#include "tools/tlbsim/experiment.h"

#include "base/error.h"
#include "base/file_util.h"
#include "base/size.h"
#include "workloads/workload_reader.h"

namespace tlbsim {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> list_names(const fs::path& dir) {
  std::vector<std::string> v;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") v.push_back(e.path().stem().string());
  std::sort(v.begin(), v.end());
  return v;
}

/// Finds `<dir>/<name>.json`; InputError listing the available names otherwise. A
/// name that is a path (contains '/' or ends in .json) names a file instead,
/// relative to the directory of `file`.
fs::path find_named(const fs::path& dir, const std::string& name, const std::string& what,
                    const std::string& pointer, const std::string& file) {
  const bool is_path = name.find('/') != std::string::npos ||
                       (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0);
  if (is_path) {
    fs::path p = name;
    if (p.is_relative()) p = fs::path(file).parent_path() / p;
    if (fs::is_regular_file(p)) return p;
    throw InputError(pointer, what + " file \"" + name + "\" not found (looked for " + p.string() + ")",
                     file);
  }
  fs::path p = dir / (name + ".json");
  if (fs::exists(p)) return p;
  auto names = list_names(dir);
  std::string msg = what + " \"" + name + "\" not found in " + dir.string();
  std::string near = closest_match(name, names);
  if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
  if (!names.empty()) msg += "; available: " + join_choices(names);
  throw InputError(pointer, msg, file);
}

/// Splits "a.b.c=value" into a JSON pointer-ish path and a JSON value.
std::pair<std::vector<std::string>, Json> parse_set(const std::string& s) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError("", "expected key.path=value, got \"" + s + "\"", "--set");
  std::vector<std::string> path;
  std::string key = s.substr(0, eq), cur;
  for (char c : key) {
    if (c == '.') {
      path.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  path.push_back(cur);
  const std::string text = s.substr(eq + 1);
  Json v;
  try {
    v = Json::parse(text);
  } catch (const Json::parse_error&) {
    v = text;  // a bare word is a string
  }
  return {path, v};
}

Json nest(const std::vector<std::string>& path, size_t from, const Json& v) {
  if (from == path.size()) return v;
  Json o = Json::object();
  o[path[from]] = nest(path, from + 1, v);
  return o;
}

std::string pointer_of(const std::vector<std::string>& path, size_t from) {
  std::string p;
  for (size_t i = from; i < path.size(); ++i) p += "/" + json_pointer_escape(path[i]);
  return p;
}

/// Loads a ParamSet from "name" or {"preset": name, overrides...} at `key`.
template <class Set>
std::string load_layered(Set& set, const Json& doc, const std::string& key, const fs::path& dir,
                         const std::string& what, const std::string& default_name,
                         const std::string& file) {
  const std::string ptr = "/" + key;
  std::string preset = default_name;
  Json overrides = Json::object();
  if (auto it = doc.find(key); it != doc.end()) {
    if (it->is_string()) {
      preset = it->get<std::string>();
    } else if (it->is_object()) {
      overrides = *it;
      if (auto pi = overrides.find("preset"); pi != overrides.end()) {
        if (!pi->is_string())
          throw InputError(ptr + "/preset", "expected a preset name string, got " + pi->dump(), file);
        preset = pi->get<std::string>();
        overrides.erase("preset");
      }
    } else {
      throw InputError(ptr, "expected a " + what + " name or an object {\"preset\": name, ...}, got " +
                                it->dump(), file);
    }
  }
  const fs::path preset_file = find_named(dir, preset, what, ptr, file);
  const Json pj = read_json_file(preset_file);
  try {
    set.load(pj, "");
  } catch (const InputError& e) {
    throw e.in_file(preset_file.string());
  }
  try {
    set.load(overrides, ptr);
    set.validate_all(ptr);
  } catch (const InputError& e) {
    throw e.in_file(file);
  }
  return preset;
}

/// "folio_size": the anonymous folio size faults should use: that size's sysfs control
/// becomes "always", every other size "never" (4KiB: all never).
void apply_folio_size(Experiment& ex, const Json& v, const std::string& file) {
  uint64_t bytes = 0;
  std::string why;
  if (v.is_number_unsigned()) bytes = v.get<uint64_t>();
  else if (v.is_string()) bytes = parse_size(v.get<std::string>(), &why).value_or(0);
  const bool pow2 = bytes && !(bytes & (bytes - 1));
  if (!pow2 || bytes < 4096 || bytes > (2u << 20) || bytes == 8192)
    throw InputError("/folio_size", "expected a folio size of 4KiB or 16KiB…2MiB (a power of "
                                    "two; order 1 is not an anonymous THP size), got " + v.dump(),
                     file);
  auto& thp = ex.kernel->thp;
  for (unsigned order = mm::kMinAnonThpOrder; order <= mm::kPmdOrder; ++order)
    const_cast<Param<std::string>&>(thp.per_size(order))
        .set((uint64_t{4096} << order) == bytes ? "always" : "never");
  ex.folio_size = bytes;
}

}  // namespace

Json Experiment::effective_config() const {
  Json j = Json::object();
  j["name"] = name;
  j["seed"] = seed;
  j["machine_preset"] = machine_preset;
  j["kernel_profile"] = kernel_profile;
  if (folio_size) j["folio_size"] = format_size(folio_size);
  j["machine"] = machine->to_json();
  j["kernel"] = kernel->to_json();
  j["workload"] = workload_json;
  return j;
}

std::unique_ptr<Experiment> load_experiment(const fs::path& file,
                                            const std::vector<std::string>& sets,
                                            const SearchPaths& paths, bool as_point) {
  const std::string fname = file.string();
  Json doc = read_json_file(file);
  if (!doc.is_object()) throw InputError("/", "expected an experiment object", fname);
  // --set overrides are merged into the document first, so they land where a user
  // would have written them; messages name the --set argument.
  std::vector<std::pair<std::string, std::string>> set_ptrs;  // pointer → argument
  for (const auto& s : sets) {
    auto [path, value] = parse_set(s);
    const std::string& top = path[0];
    if (top != "machine" && top != "kernel" && top != "seed" && top != "workload" &&
        top != "name" && top != "folio_size")
      throw InputError("", "unknown top-level key \"" + top +
                               "\"; --set accepts machine.*, kernel.*, workload.*, seed, name, "
                               "folio_size",
                       "--set " + s);
    if (path.size() == 1) {
      // Selecting a preset (machine, kernel, catalog workload) keeps the overrides
      // already layered on the previous one: "machine=x86_server" after
      // "machine.cpus=4" (or a file's {"preset": ..., "cpus": 4}) runs x86_server
      // on 4 CPUs. Any other value replaces the key.
      Json& slot = doc[top];
      const bool preset_key = top == "machine" || top == "kernel" || top == "workload";
      if (preset_key && value.is_string() && slot.is_object() &&
          (top != "workload" || slot.contains("preset")))
        slot["preset"] = value;
      else
        slot = value;
    } else {
      Json& slot = doc[top];
      if (slot.is_string()) slot = Json{{"preset", slot.get<std::string>()}};
      if (!slot.is_object()) slot = Json::object();
      slot.merge_patch(nest(path, 1, value));
    }
    set_ptrs.emplace_back(pointer_of(path, 0), s);
  }
  auto attribute = [&](const InputError& e) -> InputError {
    for (auto& [ptr, arg] : set_ptrs)
      if (e.file() == fname && e.where() == ptr) return InputError(e.where(), e.message(), "--set " + arg);
    return e;
  };
  try {
    auto ex = std::make_unique<Experiment>();
    ex->file = file;
    const std::vector<std::string> top_keys = {"name", "description", "machine", "kernel",
                                               "workload", "seed", "folio_size", "sweep"};
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      const std::string& k = it.key();
      if (!k.empty() && k[0] == '_') continue;
      if (std::find(top_keys.begin(), top_keys.end(), k) == top_keys.end()) {
        std::string msg = "unknown key \"" + k + "\"";
        std::string near = closest_match(k, top_keys);
        if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
        throw InputError("/" + json_pointer_escape(k), msg + "; valid keys: " + join_choices(top_keys), fname);
      }
    }
    if (doc.contains("sweep") && !as_point)
      throw InputError("/sweep", "this experiment is a sweep: run it with `tlbsim run` (which "
                                 "runs every point), not as a single run", fname);
    ex->name = file.stem().string();
    if (auto it = doc.find("name"); it != doc.end()) {
      if (!it->is_string() || it->get<std::string>().empty())
        throw InputError("/name", "expected a non-empty string, got " + it->dump(), fname);
      ex->name = it->get<std::string>();
    }
    if (auto it = doc.find("description"); it != doc.end() && it->is_string())
      ex->description = it->get<std::string>();
    if (auto it = doc.find("seed"); it != doc.end()) {
      if (!it->is_number_unsigned())
        throw InputError("/seed", "expected a non-negative integer, got " + it->dump(), fname);
      ex->seed = it->get<uint64_t>();
    }
    ex->machine_preset = load_layered(*ex->machine, doc, "machine", paths.root / "configs/machines",
                                      "machine preset", "x86_small", fname);
    ex->kernel_profile = load_layered(*ex->kernel, doc, "kernel", paths.root / "configs/kernels",
                                      "kernel profile", "linux-6.15", fname);
    if (auto it = doc.find("folio_size"); it != doc.end()) apply_folio_size(*ex, *it, fname);
    // Workload: inline object, or a catalog name.
    auto wit = doc.find("workload");
    if (wit == doc.end()) throw InputError("/", "missing required key \"workload\"", fname);
    std::string wfile = fname, wptr = "/workload";
    std::string catalog;
    Json param_overrides = Json::object();
    if (wit->is_string()) {
      catalog = wit->get<std::string>();
    } else if (wit->is_object() && wit->contains("preset")) {
      // {"preset": "munmap", "params": {...}}: a catalog workload with parameters.
      const Json& pr = (*wit)["preset"];
      if (!pr.is_string())
        throw InputError("/workload/preset", "expected a catalog workload name, got " + pr.dump(), fname);
      catalog = pr.get<std::string>();
      for (auto it = wit->begin(); it != wit->end(); ++it) {
        if (it.key() == "preset" || (!it.key().empty() && it.key()[0] == '_')) continue;
        if (it.key() != "params")
          throw InputError("/workload/" + json_pointer_escape(it.key()),
                           "unknown key \"" + it.key() + "\" next to a catalog \"preset\"; valid "
                           "keys: preset or params", fname);
        if (!it->is_object())
          throw InputError("/workload/params", "expected an object of parameter values", fname);
        param_overrides = *it;
      }
    }
    if (!catalog.empty()) {
      const fs::path wp = find_named(paths.root / "workloads/catalog", catalog,
                                     "catalog workload", "/workload", fname);
      ex->workload_ref = wp.string();
      ex->workload_json = read_json_file(wp);
      wfile = wp.string();
      wptr = "";
      Json& declared = ex->workload_json["params"];
      if (declared.is_null()) declared = Json::object();
      for (auto it = param_overrides.begin(); it != param_overrides.end(); ++it) {
        if (!declared.contains(it.key())) {
          std::vector<std::string> known;
          for (auto d = declared.begin(); d != declared.end(); ++d) known.push_back(d.key());
          std::string msg = "unknown parameter \"" + it.key() + "\" of catalog workload \"" + catalog + "\"";
          std::string near = closest_match(it.key(), known);
          if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
          throw InputError("/workload/params/" + json_pointer_escape(it.key()),
                           msg + "; its parameters: " + join_choices(known), fname);
        }
        declared[it.key()] = *it;
      }
    } else {
      ex->workload_json = *wit;
    }
    try {
      const fs::path base = fs::path(wfile).parent_path();
      ex->workload = workload::read_workload(ex->workload_json, wptr, ex->machine->cpus(),
                                             base.empty() ? "." : base.string());
    } catch (const InputError& e) {
      throw e.in_file(wfile);
    }
    return ex;
  } catch (const InputError& e) {
    throw attribute(e);
  }
}

}  // namespace tlbsim
