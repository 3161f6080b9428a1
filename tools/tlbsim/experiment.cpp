#include "tools/tlbsim/experiment.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <type_traits>

#include "base/error.h"
#include "base/file_util.h"
#include "base/json_text.h"
#include "base/size.h"
#include "mm/kernel_versions.h"
#include "models/tlb/tlb.h"
#include "models/tlb/tlb_config.h"
#include "workloads/workload_reader.h"

namespace tlbsim {

namespace fs = std::filesystem;

namespace {

/// Bytes in a name that becomes a file or directory name (NAME_MAX).
constexpr size_t kMaxNameBytes = 255;

std::vector<std::string> list_names(const fs::path& dir) {
  std::vector<std::string> v;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") v.push_back(e.path().stem().string());
  std::sort(v.begin(), v.end());
  return v;
}

bool names_a_file(const std::string& name) {
  return name.find('/') != std::string::npos ||
         (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0);
}

/// Finds `<dir>/<name>.json` in the first of `dirs` that has it; InputError listing
/// the directories searched and the names available otherwise. A name that is a
/// path (contains '/' or ends in .json) names a file instead, relative to the
/// directory of `file`.
fs::path find_named(const std::vector<fs::path>& dirs, const std::string& name,
                    const std::string& what, const std::string& pointer, const std::string& file) {
  // A name becomes a file name: bounded and printable before any filesystem call.
  bool printable = !name.empty();
  for (unsigned char c : name) printable &= c >= 0x20 && c != 0x7f;
  if (!printable || name.size() > kMaxNameBytes)
    throw InputError(pointer, "expected a " + what + " name of 1 to " +
                                  std::to_string(kMaxNameBytes) +
                                  " bytes without control characters, got " + quote_excerpt(name) +
                                  " (" + std::to_string(name.size()) + " bytes)", file);
  std::error_code ec;
  if (names_a_file(name)) {
    fs::path p = name;
    if (p.is_relative()) p = fs::path(file).parent_path() / p;
    if (fs::is_regular_file(p, ec)) return p;
    throw InputError(pointer, what + " file " + quote_excerpt(name) + " not found (looked for " +
                                  p.string() + ")", file);
  }
  std::vector<std::string> names;
  std::string searched;
  for (const auto& dir : dirs) {
    fs::path p = dir / (name + ".json");
    if (fs::is_regular_file(p, ec)) return p;
    for (auto& n : list_names(dir)) names.push_back(std::move(n));
    searched += (searched.empty() ? "" : ", ") + dir.string();
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string msg = what + " " + quote_excerpt(name) + " not found in " + searched;
  std::string near = closest_match(name, names);
  if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
  if (!names.empty()) msg += "; available: " + join_choices(names);
  throw InputError(pointer, msg, file);
}

std::string pointer_of(const std::vector<std::string>& path, size_t from) {
  std::string p;
  for (size_t i = from; i < path.size(); ++i) p += "/" + json_pointer_escape(path[i]);
  return p;
}

/// Splits "a.b.c=value" into a JSON pointer-ish path and a JSON value. Errors name
/// the argument as their file and the document root or the key as their pointer.
std::pair<std::vector<std::string>, Json> parse_set(const std::string& s) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError("/", "expected key.path=value, got " + quote_excerpt(s), "--set");
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
  for (const auto& k : path)
    if (k.empty()) throw InputError("/", "expected key.path=value with no empty key, got " +
                                             quote_excerpt(s), "--set");
  const std::string text = s.substr(eq + 1);
  check_json_bounds(text, "--set " + s.substr(0, eq + 1) + "...");
  // A kernel version is text: 6.10 read as a number would be 6.1.
  if (path.size() == 2 && path[0] == "kernel" && path[1] == "version" && !text.empty() &&
      text.front() != '"')
    return {path, Json(text)};
  Json v;
  try {
    v = Json::parse(text);
  } catch (const Json::exception&) {
    v = text;  // a bare word is a string
    try {
      (void)v.dump();
    } catch (const Json::exception&) {
      throw InputError(pointer_of(path, 0), "expected UTF-8 text, got " + quote_excerpt(text),
                       "--set");
    }
  }
  return {path, v};
}

Json nest(const std::vector<std::string>& path, size_t from, const Json& v) {
  if (from == path.size()) return v;
  Json o = Json::object();
  o[path[from]] = nest(path, from + 1, v);
  return o;
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
          throw InputError(ptr + "/preset", "expected a preset name string, got " + json_excerpt(*pi), file);
        preset = pi->get<std::string>();
        overrides.erase("preset");
      }
    } else {
      throw InputError(ptr, "expected a " + what + " name or an object {\"preset\": name, ...}, got " +
                                json_excerpt(*it), file);
    }
  }
  const fs::path preset_file = find_named({dir}, preset, what, ptr, file);
  const Json pj = read_json_file(preset_file);
  if constexpr (std::is_same_v<Set, mm::KernelProfile>) {
    // A profile is a version: every switch starts at that release's value
    // (mm/kernel_versions.cpp); the preset's and the experiment's keys override it.
    // The version the experiment names wins over the preset's.
    const Json* v = overrides.contains("version") ? &overrides["version"]
                    : pj.contains("version")      ? &pj["version"]
                                                  : nullptr;
    if (v && v->is_string()) {
      set.version.set(v->get<std::string>());
      mm::apply_version_defaults(set);
    }
  }
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
                                    "two; order 1 is not an anonymous THP size), got " + json_excerpt(v),
                     file);
  auto& thp = ex.kernel->thp;
  for (unsigned order = mm::kMinAnonThpOrder; order <= mm::kPmdOrder; ++order)
    const_cast<Param<std::string>&>(thp.per_size(order))
        .set((uint64_t{4096} << order) == bytes ? "always" : "never");
  ex.folio_size = bytes;
}

/// The hardware a machine builds, checked as the models' constructors check it, so
/// that whatever `tlbsim validate` accepts also builds: every TLB geometry (an
/// absent structure is entries 0, but the L1 dTLB must exist) and the arm64 walk
/// cache.
void check_machine(const MachineParams& m) {
  const bool arm64 = m.arch() == "arm64";
  const std::initializer_list<PageSize> x86_sizes = {PageSize::k4K, PageSize::k2M, PageSize::k1G};
  const std::initializer_list<PageSize> arm64_sizes = {PageSize::k4K, PageSize::k64K,
                                                       PageSize::k2M, PageSize::k1G};
  struct Structure {
    const TlbParams& params;
    const char* pointer;
    bool required;
  };
  std::vector<Structure> tlbs = {{m.l1d, "/machine/l1d", true}, {m.stlb, "/machine/stlb", false}};
  if (!arm64) tlbs.push_back({m.l1d_2m, "/machine/l1d_2m", false});
  for (const auto& t : tlbs) {
    const std::string ptr = t.pointer;
    if (t.params.entries() == 0) {
      if (!t.required) continue;
      throw InputError(ptr + "/entries", "expected at least 1 entry (the L1 data TLB cannot be "
                                         "absent; entries 0 removes l1d_2m or stlb), got 0");
    }
    const TlbGeometry g = tlb_geometry_of(t.params, ptr.substr(ptr.rfind('/') + 1), ptr,
                                          arm64 ? arm64_sizes : x86_sizes, arm64 ? "arm64" : "x86",
                                          /*seed=*/1);
    if (g.sizes.empty())
      throw InputError(ptr + "/sizes", "expected at least one page size (e.g. \"4KiB\"), got " +
                                           quote_excerpt(t.params.sizes()));
    try {
      Tlb check(g);
    } catch (const std::invalid_argument& e) {
      throw InputError(ptr + "/sizes", std::string("expected a buildable TLB: ") + e.what());
    }
  }
  if (arm64 && m.arm64.walk_cache_entries() &&
      m.arm64.walk_cache_entries() % m.arm64.walk_cache_ways())
    throw InputError("/machine/arm64/walk_cache_ways",
                     "expected ways dividing walk_cache_entries (" +
                         std::to_string(m.arm64.walk_cache_entries()) + "), got " +
                         std::to_string(m.arm64.walk_cache_ways()));
}

}  // namespace

HostMemoryEstimate estimate_host_memory(const Experiment& ex) {
  // Coefficients measured as VmHWM (docs/guide.md, "Host memory"): the frame table
  // and the coherence checker's per-frame state cost 13.3 MiB per simulated GiB, page
  // tables and folio state of touched memory up to 6.7 MiB more; a CPU 300 KiB plus
  // 24 bytes per TLB entry, 33 per walk-cache entry (arm64_server, 8 CPUs with 2^20
  // walk-cache entries each: VmHWM 262 MB above 16 entries, 32.8 bytes per entry);
  // a cache 4 bytes per 64-byte line; a zipf
  // touch 8 bytes per page of its window (the CPU model's CDF table).
  constexpr uint64_t kBase = 32ull << 20;
  constexpr uint64_t kPerSimulatedGiB = 20ull << 20;
  constexpr uint64_t kPerCpu = 300ull << 10;
  constexpr uint64_t kPerTlbEntry = 24;
  constexpr uint64_t kPerWalkCacheEntry = 33;
  constexpr uint64_t kPerCacheLine = 4;
  constexpr uint64_t kPerZipfPage = 8;
  const MachineParams& m = *ex.machine;
  struct Term {
    uint64_t bytes;
    std::string pointer, what;
  };
  std::vector<Term> terms;
  const uint64_t mem = m.memory().value;
  terms.push_back({mem / (1ull << 30) * kPerSimulatedGiB + (mem % (1ull << 30)) * kPerSimulatedGiB / (1ull << 30),
                   "/machine/memory", format_size(mem) + " of simulated memory"});
  const uint64_t cpus = m.cpus();
  const uint64_t tlb_entries = uint64_t{m.l1d.entries()} + m.l1d_2m.entries() + m.stlb.entries();
  const uint64_t walk_entries = uint64_t{m.walker.pml4_cache_entries()} + m.walker.pdpt_cache_entries() +
                                m.walker.pde_cache_entries() + m.arm64.walk_cache_entries();
  const uint64_t entries = tlb_entries + walk_entries;
  const uint64_t private_lines = (m.cache.l1d.bytes().value + m.cache.l2.bytes().value) / 64;
  terms.push_back({cpus * (kPerCpu + tlb_entries * kPerTlbEntry + walk_entries * kPerWalkCacheEntry +
                           private_lines * kPerCacheLine),
                   "/machine/cpus", std::to_string(cpus) + " CPUs with " + std::to_string(entries) +
                                        " TLB entries each"});
  terms.push_back({uint64_t{m.topology.sockets()} * (m.cache.llc.bytes().value / 64) * kPerCacheLine,
                   "/machine/cache/llc/bytes", "the LLC tags"});
  // The largest zipf window of any op (one table lives at a time per CPU).
  uint64_t zipf_pages = 0;
  std::string zipf_ptr;
  std::map<std::string, uint64_t> sizes;  // mapping name → size, in program order
  std::vector<const workload::Op*> todo;
  for (const auto& p : ex.workload.processes)
    for (const auto& t : p.threads)
      for (auto it = t.ops.rbegin(); it != t.ops.rend(); ++it) todo.push_back(&*it);
  while (!todo.empty()) {
    const workload::Op* op = todo.back();
    todo.pop_back();
    if (op->kind == workload::OpKind::kMmap) sizes[op->mapping] = op->size;
    if (op->kind == workload::OpKind::kTouch && op->pattern == workload::Pattern::kZipf) {
      const uint64_t len = sizes.count(op->mapping) ? sizes[op->mapping] : 0;
      const uint64_t window = op->length ? op->length : len - std::min(len, op->offset);
      if (window / kPageSize > zipf_pages) {
        zipf_pages = window / kPageSize;
        zipf_ptr = op->pointer;
      }
    }
    for (auto it = op->body.rbegin(); it != op->body.rend(); ++it) todo.push_back(&*it);
  }
  if (zipf_pages)
    terms.push_back({zipf_pages * kPerZipfPage * std::min<uint64_t>(cpus, 2), zipf_ptr,
                     "a zipf window of " + std::to_string(zipf_pages) + " pages"});
  HostMemoryEstimate e;
  e.bytes = kBase;
  uint64_t largest = 0;
  for (const auto& t : terms) {
    e.bytes += t.bytes;
    if (t.bytes > largest) {
      largest = t.bytes;
      e.pointer = t.pointer;
      e.file = t.pointer == zipf_ptr && !ex.workload_ref.empty() ? ex.workload_ref : ex.file.string();
    }
    if (t.bytes >= (1ull << 20))
      e.detail += (e.detail.empty() ? "" : ", ") + t.what + " " + format_size(t.bytes >> 20 << 20);
  }
  return e;
}

namespace {
/// A value of /proc/self/status or /proc/meminfo in bytes ("MemAvailable:  123 kB").
std::optional<uint64_t> proc_kib(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      std::istringstream ls(line.substr(key.size() + 1));
      uint64_t kib = 0;
      if (ls >> kib) return kib << 10;
    }
  return std::nullopt;
}
std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fGiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}
}  // namespace

void check_host_memory(const Experiment& ex, std::optional<uint64_t> max_bytes) {
  const HostMemoryEstimate e = estimate_host_memory(ex);
  std::string limit_what;
  uint64_t limit = UINT64_MAX;
  if (max_bytes) {
    limit = *max_bytes;
    limit_what = "--max-host-memory";
  } else if (auto avail = proc_kib("/proc/meminfo", "MemAvailable")) {
    limit = *avail;
    limit_what = "MemAvailable of this host";
  }
  // ulimit -v: what is mapped already, plus SystemC's coroutine stacks (about 640 KiB
  // of address space per CPU), counts against it too.
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
    const uint64_t used = proc_kib("/proc/self/status", "VmSize").value_or(0) +
                          uint64_t{ex.machine->cpus()} * (640ull << 10);
    const uint64_t room = as.rlim_cur > used ? as.rlim_cur - used : 0;
    if (room < limit) {
      limit = room;
      limit_what = "the address-space limit (ulimit -v) less what is mapped";
    }
  }
  if (e.bytes <= limit) return;
  throw InputError(e.pointer, "this run needs about " + gib(e.bytes) + " of host memory (" +
                                  e.detail + ") but " + limit_what + " is " + gib(limit) +
                                  "; use a smaller configuration, or --max-host-memory SIZE to "
                                  "allow more",
                   e.file);
}

std::string experiment_name(const Json& doc, const fs::path& file) {
  auto it = doc.find("name");
  if (it == doc.end()) return file.stem().string();
  // The name is the default output directory (results/NAME).
  const std::string n = it->is_string() ? it->get<std::string>() : std::string();
  bool ok = !n.empty() && n.size() <= kMaxNameBytes && n != "." && n != "..";
  for (unsigned char c : n) ok &= c >= 0x20 && c != 0x7f && c != '/';
  if (!ok)
    throw InputError("/name", "expected a name of 1 to " + std::to_string(kMaxNameBytes) +
                                  " bytes without '/' or control characters (it names the "
                                  "results directory), got " + json_excerpt(*it), file.string());
  return n;
}

uint64_t task_size(const MachineParams& m) {
  if (m.arch() == "arm64") return kTaskSizeArm64;
  return m.pgtable_levels() == 5 ? kTaskSizeX86La57 : kTaskSizeX86;
}

#ifndef TLBSIM_SOURCE_DIR
#define TLBSIM_SOURCE_DIR "."
#endif

SearchPaths SearchPaths::from_environment() {
  SearchPaths p;
  const char* r = std::getenv("TLBSIM_ROOT");
  p.root = r && *r ? r : TLBSIM_SOURCE_DIR;
  if (const char* tp = std::getenv("TLBSIM_PATH")) {
    std::string entry;
    for (const char* c = tp;; ++c) {
      if (*c == ':' || *c == '\0') {
        if (!entry.empty()) p.workloads.push_back(fs::absolute(entry));
        entry.clear();
        if (*c == '\0') break;
      } else {
        entry += *c;
      }
    }
  }
  return p;
}

std::string workload_set_argument(const std::string& file) {
  if (!names_a_file(file)) return "workload=" + file;
  std::error_code ec;
  const fs::path abs = fs::absolute(file, ec);
  return "workload=" + (ec ? file : abs.lexically_normal().string());
}

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
      throw InputError("/" + json_pointer_escape(top),
                       "unknown top-level key " + quote_excerpt(top) +
                           "; --set accepts machine.*, kernel.*, workload.*, seed, name, folio_size",
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
    ex->name = experiment_name(doc, file);
    if (auto it = doc.find("description"); it != doc.end()) {
      if (!it->is_string())
        throw InputError("/description", "expected a string, got " + json_excerpt(*it), fname);
      ex->description = it->get<std::string>();
    }
    if (auto it = doc.find("seed"); it != doc.end()) {
      if (!it->is_number_unsigned())
        throw InputError("/seed", "expected a non-negative integer, got " + json_excerpt(*it), fname);
      ex->seed = it->get<uint64_t>();
    }
    ex->machine_preset = load_layered(*ex->machine, doc, "machine", paths.root / "configs/machines",
                                      "machine preset", "x86_small", fname);
    ex->kernel_profile = load_layered(*ex->kernel, doc, "kernel", paths.root / "configs/kernels",
                                      "kernel profile", "linux-6.15", fname);
    if (auto it = doc.find("folio_size"); it != doc.end()) {
      apply_folio_size(*ex, *it, fname);
      // A folio size the kernel's version cannot have (anonymous mTHP before 6.8).
      std::string where;
      const std::string why = mm::version_conflict(*ex->kernel, &where);
      if (!why.empty()) throw InputError("/folio_size", why, fname);
    }
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
        throw InputError("/workload/preset", "expected a catalog workload name, got " + json_excerpt(pr), fname);
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
      std::vector<fs::path> dirs = paths.workloads;
      dirs.push_back(paths.root / "workloads/catalog");
      const fs::path wp = find_named(dirs, catalog, "catalog workload", "/workload", fname);
      ex->workload_ref = wp.string();
      ex->workload_json = read_json_file(wp);
      wfile = wp.string();
      wptr = "";
      if (!ex->workload_json.is_object())
        throw InputError("/", "expected a workload object, got " + json_excerpt(ex->workload_json),
                         wfile);
      Json& declared = ex->workload_json["params"];
      if (declared.is_null()) declared = Json::object();
      if (!declared.is_object())
        throw InputError("/params", "expected an object of parameter defaults, got " +
                                        json_excerpt(declared), wfile);
      for (auto it = param_overrides.begin(); it != param_overrides.end(); ++it) {
        if (!declared.contains(it.key())) {
          std::vector<std::string> known;
          for (auto d = declared.begin(); d != declared.end(); ++d) known.push_back(d.key());
          std::string msg = "unknown parameter " + quote_excerpt(it.key()) + " of catalog workload " +
                            quote_excerpt(catalog);
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
      check_machine(*ex->machine);
    } catch (const InputError& e) {
      throw e.in_file(fname);
    }
    try {
      const fs::path base = fs::path(wfile).parent_path();
      ex->workload = workload::read_workload(ex->workload_json, wptr, ex->machine->cpus(),
                                             base.empty() ? "." : base.string(),
                                             task_size(*ex->machine));
    } catch (const InputError& e) {
      throw e.in_file(wfile);
    }
    return ex;
  } catch (const InputError& e) {
    throw attribute(e);
  }
}

}  // namespace tlbsim
