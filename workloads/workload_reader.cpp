#include "workloads/workload_reader.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <set>

#include "base/error.h"
#include "base/params.h"
#include "base/size.h"

namespace tlbsim::workload {

const char* op_name(OpKind k) {
  switch (k) {
    case OpKind::kMmap: return "mmap";
    case OpKind::kTouch: return "touch";
    case OpKind::kMunmap: return "munmap";
    case OpKind::kMprotect: return "mprotect";
    case OpKind::kMadvise: return "madvise";
    case OpKind::kMremap: return "mremap";
    case OpKind::kFork: return "fork";
    case OpKind::kExit: return "exit";
    case OpKind::kWait: return "wait";
    case OpKind::kBarrier: return "barrier";
    case OpKind::kMlock: return "mlock";
    case OpKind::kMunlock: return "munlock";
    case OpKind::kMovePages: return "move_pages";
    case OpKind::kUffdioMove: return "uffdio_move";
    case OpKind::kReclaim: return "reclaim";
    case OpKind::kSleep: return "sleep";
    case OpKind::kRegion: return "region";
    case OpKind::kMigrate: return "migrate";
    case OpKind::kReplay: return "replay";
  }
  return "?";
}

bool op_supported(OpKind k) {
  switch (k) {
    case OpKind::kMmap:
    case OpKind::kTouch:
    case OpKind::kMunmap:
    case OpKind::kMprotect:
    case OpKind::kMadvise:
    case OpKind::kFork:
    case OpKind::kExit:
    case OpKind::kWait:
    case OpKind::kBarrier:
    case OpKind::kSleep:
    case OpKind::kRegion:
    case OpKind::kReplay:
    case OpKind::kReclaim:
    case OpKind::kMovePages:
      return true;
    default:
      return false;
  }
}

namespace {

const std::map<std::string, OpKind>& op_names() {
  static const std::map<std::string, OpKind> m = {
      {"mmap", OpKind::kMmap},         {"touch", OpKind::kTouch},
      {"access", OpKind::kTouch},      {"munmap", OpKind::kMunmap},
      {"mprotect", OpKind::kMprotect}, {"madvise", OpKind::kMadvise},
      {"mremap", OpKind::kMremap},     {"fork", OpKind::kFork},
      {"exit", OpKind::kExit},         {"wait", OpKind::kWait},
      {"barrier", OpKind::kBarrier},   {"mlock", OpKind::kMlock},
      {"munlock", OpKind::kMunlock},   {"move_pages", OpKind::kMovePages},
      {"uffdio_move", OpKind::kUffdioMove}, {"reclaim", OpKind::kReclaim},
      {"sleep", OpKind::kSleep},       {"region", OpKind::kRegion},
      {"migrate", OpKind::kMigrate},   {"replay", OpKind::kReplay}};
  return m;
}

std::vector<std::string> keys_of(const std::map<std::string, OpKind>& m) {
  std::vector<std::string> v;
  for (auto& [k, _] : m) v.push_back(k);
  return v;
}

/// Reads fields of one JSON object and rejects the keys nobody asked for.
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string pointer, const char* what)
      : m_j(j), m_ptr(std::move(pointer)) {
    if (!j.is_object())
      throw InputError(m_ptr.empty() ? "/" : m_ptr,
                       std::string("expected ") + what + " object, got " +
                           (j.is_array() ? "an array" : j.dump()));
  }
  std::string ptr(const std::string& key) const { return m_ptr + "/" + json_pointer_escape(key); }
  const Json* get(const std::string& key) {
    m_allowed.insert(key);
    auto it = m_j.find(key);
    return it == m_j.end() ? nullptr : &*it;
  }
  std::string str(const std::string& key, const std::string& def, bool required = false) {
    const Json* v = get(key);
    if (!v) {
      if (required) throw InputError(m_ptr.empty() ? "/" : m_ptr, "missing required key \"" + key + "\"");
      return def;
    }
    if (!v->is_string()) throw InputError(ptr(key), "expected a string, got " + v->dump());
    return v->get<std::string>();
  }
  std::string choice(const std::string& key, const std::string& def,
                     const std::vector<std::string>& choices) {
    std::string s = str(key, def);
    for (auto& c : choices)
      if (c == s) return s;
    throw InputError(ptr(key), "expected one of " + join_choices(choices) + ", got \"" + s + "\"");
  }
  uint64_t uint(const std::string& key, uint64_t def, uint64_t min = 0) {
    const Json* v = get(key);
    if (!v) return def;
    if (!v->is_number_integer() || (v->is_number_integer() && !v->is_number_unsigned() &&
                                    v->get<int64_t>() < 0))
      throw InputError(ptr(key), "expected a non-negative integer, got " + v->dump());
    uint64_t x = v->get<uint64_t>();
    if (x < min)
      throw InputError(ptr(key), "expected an integer >= " + std::to_string(min) + ", got " +
                                     v->dump());
    return x;
  }
  uint64_t size(const std::string& key, uint64_t def, bool required = false) {
    const Json* v = get(key);
    if (!v) {
      if (required) throw InputError(m_ptr.empty() ? "/" : m_ptr, "missing required key \"" + key + "\"");
      return def;
    }
    if (v->is_number_unsigned()) return v->get<uint64_t>();
    if (!v->is_string())
      throw InputError(ptr(key), "expected a size such as \"4KiB\" or \"1GiB\", got " + v->dump());
    std::string why;
    auto s = parse_size(v->get<std::string>(), &why);
    if (!s) throw InputError(ptr(key), "expected a size such as \"4KiB\" or \"1GiB\" (" + why +
                                           "), got " + v->dump());
    return *s;
  }
  bool boolean(const std::string& key, bool def) {
    const Json* v = get(key);
    if (!v) return def;
    if (!v->is_boolean()) throw InputError(ptr(key), "expected true or false, got " + v->dump());
    return v->get<bool>();
  }
  double number(const std::string& key, double def) {
    const Json* v = get(key);
    if (!v) return def;
    if (!v->is_number()) throw InputError(ptr(key), "expected a number, got " + v->dump());
    return v->get<double>();
  }
  /// Throws for any key not read (keys starting with "_" are comments).
  void finish() const {
    std::vector<std::string> allowed(m_allowed.begin(), m_allowed.end());
    for (auto it = m_j.begin(); it != m_j.end(); ++it) {
      if (!it.key().empty() && it.key()[0] == '_') continue;
      if (m_allowed.count(it.key())) continue;
      std::string msg = "unknown key \"" + it.key() + "\"";
      std::string near = closest_match(it.key(), allowed);
      if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
      msg += "; valid keys here: " + join_choices(allowed);
      throw InputError(ptr(it.key()), msg);
    }
  }

 private:
  const Json& m_j;
  std::string m_ptr;
  std::set<std::string> m_allowed;
};

void parse_prot(ObjectReader& r, Op& op) {
  std::string prot = r.str("prot", "rw");
  for (char c : prot)
    if (c != 'r' && c != 'w' && c != 'x' && c != '-')
      throw InputError(r.ptr("prot"), "expected a protection like \"r\", \"rw\" or \"rwx\", got \"" +
                                           prot + "\"");
  op.prot_read = prot.find('r') != std::string::npos;
  op.prot_write = prot.find('w') != std::string::npos;
  op.prot_exec = prot.find('x') != std::string::npos;
}

struct Scope {
  std::set<std::string> mappings;       // names defined so far in this thread's process
  std::set<std::string>* barriers;      // every barrier name used
  unsigned depth = 0;      // fork nesting
  bool in_region = false;
  std::string base_dir;                 // for files the workload names
  std::vector<std::pair<unsigned, std::string>>* fork_cpus;  // CPU, pointer of each fork
};

Op read_op(const Json& j, const std::string& ptr, Scope& scope);

std::vector<Op> read_ops(const Json& j, const std::string& ptr, Scope& scope) {
  if (!j.is_array()) throw InputError(ptr, "expected an array of ops, got " + j.dump().substr(0, 40));
  std::vector<Op> ops;
  for (size_t i = 0; i < j.size(); ++i) ops.push_back(read_op(j[i], ptr + "/" + std::to_string(i), scope));
  return ops;
}

Op read_op(const Json& j, const std::string& ptr, Scope& scope) {
  ObjectReader r(j, ptr, "an op");
  const Json* name_j = r.get("op");
  if (!name_j) throw InputError(ptr, "missing required key \"op\"; valid ops: " + join_choices(keys_of(op_names())));
  if (!name_j->is_string()) throw InputError(r.ptr("op"), "expected an op name string, got " + name_j->dump());
  const std::string name = name_j->get<std::string>();
  auto it = op_names().find(name);
  if (it == op_names().end()) {
    std::string msg = "unknown op \"" + name + "\"";
    std::string near = closest_match(name, keys_of(op_names()));
    if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
    throw InputError(r.ptr("op"), msg + "; valid ops: " + join_choices(keys_of(op_names())));
  }
  Op op;
  op.kind = it->second;
  op.pointer = ptr;
  if (!op_supported(op.kind))
    throw InputError(r.ptr("op"), std::string("not supported yet: op \"") + name +
                                      "\" is part of the workload language but this version "
                                      "cannot execute it; supported ops: mmap, touch, access, "
                                      "munmap, mprotect, madvise, fork, exit, wait, barrier, "
                                      "sleep, region, replay, reclaim, move_pages");
  auto require_mapping = [&]() {
    op.mapping = r.str("mapping", "", true);
    if (!scope.mappings.count(op.mapping)) {
      std::vector<std::string> known(scope.mappings.begin(), scope.mappings.end());
      throw InputError(r.ptr("mapping"), "no mapping named \"" + op.mapping +
                                             "\" is created by an earlier mmap of this process" +
                                             (known.empty() ? "" : "; known: " + join_choices(known)));
    }
  };
  switch (op.kind) {
    case OpKind::kMmap: {
      op.mapping = r.str("name", "", true);
      op.size = r.size("size", 0, true);
      if (op.size == 0) throw InputError(r.ptr("size"), "expected a size > 0, got 0");
      parse_prot(r, op);
      op.shared = r.boolean("shared", false);
      if (op.shared) throw InputError(r.ptr("shared"), "not supported yet: shared mappings");
      op.populate = r.boolean("populate", false);
      std::string thp = r.choice("thp", "default", {"default", "hugepage", "nohugepage"});
      op.thp = thp == "hugepage" ? ThpHint::kHugePage
                                 : thp == "nohugepage" ? ThpHint::kNoHugePage : ThpHint::kDefault;
      op.align = r.size("align", 0);
      if (op.align & (op.align - 1)) throw InputError(r.ptr("align"), "expected a power of two");
      if (const Json* addr = r.get("addr")) {
        (void)addr;
        op.addr = r.size("addr", 0);
        if (op.addr % 4096) throw InputError(r.ptr("addr"), "expected a 4KiB-aligned address");
      }
      op.fixed = r.boolean("fixed", false);
      if (op.fixed && !op.addr) throw InputError(r.ptr("fixed"), "\"fixed\": true needs an \"addr\"");
      if (r.get("file")) throw InputError(r.ptr("file"), "not supported yet: file mappings");
      if (r.get("hugetlb")) throw InputError(r.ptr("hugetlb"), "not supported yet: hugetlb mappings");
      scope.mappings.insert(op.mapping);
      break;
    }
    case OpKind::kTouch: {
      require_mapping();
      op.offset = r.size("offset", 0);
      op.length = r.size("length", 0);
      std::string acc = r.choice("access", name == "access" ? "read" : "write", {"read", "write", "exec"});
      op.access = acc == "read" ? AccessKind::kRead : acc == "write" ? AccessKind::kWrite : AccessKind::kExec;
      std::string pat = r.choice("pattern", "sequential", {"sequential", "random", "strided", "zipf"});
      op.pattern = pat == "sequential" ? Pattern::kSequential
                   : pat == "random"   ? Pattern::kRandom
                   : pat == "strided"  ? Pattern::kStrided
                                       : Pattern::kZipf;
      op.stride = r.size("stride", 4096);
      if (op.stride == 0) throw InputError(r.ptr("stride"), "expected a stride > 0, got 0");
      op.count = r.uint("count", 0);
      op.repeat = r.uint("repeat", 1, 1);
      op.think_cycles = r.uint("think_cycles", 0);
      op.seed = r.uint("seed", 1);
      op.zipf_theta = r.number("zipf_theta", 0.99);
      if (op.zipf_theta <= 0 || op.zipf_theta >= 10)
        throw InputError(r.ptr("zipf_theta"), "expected 0 < zipf_theta < 10");
      break;
    }
    case OpKind::kMunmap:
      require_mapping();
      op.offset = r.size("offset", 0);
      op.length = r.size("length", 0);
      if (op.offset % 4096 || op.length % 4096)
        throw InputError(ptr, "munmap offset and length must be multiples of 4KiB");
      break;
    case OpKind::kMprotect:
      require_mapping();
      op.offset = r.size("offset", 0);
      op.length = r.size("length", 0);
      if (op.offset % 4096 || op.length % 4096)
        throw InputError(ptr, "mprotect offset and length must be multiples of 4KiB");
      if (!r.get("prot")) throw InputError(ptr, "missing required key \"prot\" (e.g. \"r\", \"rw\")");
      parse_prot(r, op);
      break;
    case OpKind::kMadvise:
      require_mapping();
      op.offset = r.size("offset", 0);
      op.length = r.size("length", 0);
      if (op.offset % 4096 || op.length % 4096)
        throw InputError(ptr, "madvise offset and length must be multiples of 4KiB");
      op.advice = r.choice("advice", "", {"dontneed", "free", "hugepage", "nohugepage",
                                          "pageout", "cold", "collapse"});
      if (op.advice == "collapse")
        throw InputError(r.ptr("advice"), "not supported yet: MADV_collapse (khugepaged is not "
                                          "modelled yet)");
      break;
    case OpKind::kMovePages:
      require_mapping();
      op.offset = r.size("offset", 0);
      op.length = r.size("length", 0);
      if (op.offset % 4096 || op.length % 4096)
        throw InputError(ptr, "move_pages offset and length must be multiples of 4KiB");
      break;
    case OpKind::kReclaim:
      op.pages = r.uint("pages", 0);
      op.target_free = r.size("target_free", 0);
      if (!op.pages && !op.target_free)
        throw InputError(ptr, "reclaim needs \"pages\" (a page count) and/or \"target_free\" "
                              "(a size), both > 0");
      break;
    case OpKind::kFork: {
      if (!r.get("cpu")) throw InputError(ptr, "missing required key \"cpu\": the CPU the child runs on");
      op.cpu = static_cast<int>(r.uint("cpu", 0));
      scope.fork_cpus->emplace_back(static_cast<unsigned>(op.cpu), r.ptr("cpu"));
      const Json* body = r.get("ops");
      Scope child = scope;  // the child inherits the mappings made so far
      if (body) {
        ++child.depth;
        op.body = read_ops(*body, r.ptr("ops"), child);
      }
      break;
    }
    case OpKind::kExit:
    case OpKind::kWait:
      break;
    case OpKind::kBarrier:
      op.name = r.str("name", "", true);
      op.spin = r.choice("wait", "block", {"block", "spin"}) == "spin";
      scope.barriers->insert(op.name);
      break;
    case OpKind::kSleep:
      op.cycles = r.uint("cycles", 0);
      break;
    case OpKind::kReplay: {
      const Json* maps = r.get("mappings");
      if (!maps || !maps->is_array() || maps->empty())
        throw InputError(maps ? r.ptr("mappings") : ptr,
                         "expected \"mappings\": a non-empty array of mapping names");
      for (size_t i = 0; i < maps->size(); ++i) {
        const Json& m = (*maps)[i];
        const std::string mp = r.ptr("mappings") + "/" + std::to_string(i);
        if (!m.is_string()) throw InputError(mp, "expected a mapping name, got " + m.dump());
        if (!scope.mappings.count(m.get<std::string>()))
          throw InputError(mp, "no mapping named \"" + m.get<std::string>() +
                                   "\" is created by an earlier mmap of this process");
        op.mappings.push_back(m.get<std::string>());
      }
      std::string file = r.str("trace", "", true);
      if (!file.empty() && file[0] != '/') file = scope.base_dir + "/" + file;
      try {
        op.trace = std::make_shared<const std::vector<TraceEntry>>(
            read_trace_file(file, op.mappings.size()));
      } catch (const InputError& e) {
        if (e.file().empty()) throw InputError(r.ptr("trace"), e.message());
        throw;
      }
      break;
    }
    case OpKind::kRegion: {
      op.name = r.str("name", "", true);
      if (scope.in_region) throw InputError(r.ptr("name"), "regions cannot be nested");
      const Json* body = r.get("ops");
      if (!body) throw InputError(ptr, "missing required key \"ops\" (the ops inside the region)");
      scope.in_region = true;
      op.body = read_ops(*body, r.ptr("ops"), scope);
      scope.in_region = false;
      break;
    }
    default:
      break;
  }
  r.finish();
  return op;
}

/// Replaces "${name}" in every string of `j` by the parameter's value: a string that
/// is exactly "${name}" takes the parameter's JSON value (so numbers stay numbers),
/// otherwise the value's text is spliced in.
Json substitute(const Json& j, const Json& params, const std::string& ptr) {
  if (j.is_object()) {
    Json o = Json::object();
    for (auto it = j.begin(); it != j.end(); ++it)
      o[it.key()] = substitute(it.value(), params, ptr + "/" + json_pointer_escape(it.key()));
    return o;
  }
  if (j.is_array()) {
    Json a = Json::array();
    for (size_t i = 0; i < j.size(); ++i) a.push_back(substitute(j[i], params, ptr + "/" + std::to_string(i)));
    return a;
  }
  if (!j.is_string()) return j;
  const std::string s = j.get<std::string>();
  if (s.find("${") == std::string::npos) return j;
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t open = s.find("${", i);
    if (open == std::string::npos) {
      out += s.substr(i);
      break;
    }
    size_t close = s.find('}', open);
    if (close == std::string::npos) throw InputError(ptr, "unterminated ${...} in \"" + s + "\"");
    const std::string name = s.substr(open + 2, close - open - 2);
    auto it = params.find(name);
    if (it == params.end()) {
      std::vector<std::string> known;
      for (auto p = params.begin(); p != params.end(); ++p) known.push_back(p.key());
      throw InputError(ptr, "unknown workload parameter \"" + name + "\"" +
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

std::vector<TraceEntry> read_trace_file(const std::string& path, size_t nr_mappings) {
  std::ifstream in(path);
  if (!in) throw InputError("", "trace file " + path + " not found or unreadable");
  std::vector<TraceEntry> v;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    uint64_t m = 0, count = 1;
    std::string page_hex, kind;
    if (!(ls >> m >> page_hex >> kind))
      throw InputError("line " + std::to_string(lineno),
                       "expected \"MAPPING PAGE KIND [COUNT]\", got \"" + line.substr(0, 60) + "\"", path);
    if (!(ls >> count)) count = 1;
    std::string rest;
    if (ls >> rest)
      throw InputError("line " + std::to_string(lineno), "unexpected text \"" + rest + "\"", path);
    TraceEntry e;
    if (m >= nr_mappings)
      throw InputError("line " + std::to_string(lineno),
                       "mapping index " + std::to_string(m) + " but the replay op names " +
                           std::to_string(nr_mappings) + " mappings", path);
    e.mapping = static_cast<uint32_t>(m);
    char* end = nullptr;
    e.page = std::strtoull(page_hex.c_str(), &end, 16);
    if (!end || *end)
      throw InputError("line " + std::to_string(lineno), "expected a hex page offset, got \"" + page_hex + "\"", path);
    if (kind == "r") e.kind = AccessKind::kRead;
    else if (kind == "w") e.kind = AccessKind::kWrite;
    else if (kind == "x") e.kind = AccessKind::kExec;
    else throw InputError("line " + std::to_string(lineno), "expected kind r, w or x, got \"" + kind + "\"", path);
    if (count == 0 || count > 0xffffffffu)
      throw InputError("line " + std::to_string(lineno), "expected a count between 1 and 2^32-1", path);
    e.count = static_cast<uint32_t>(count);
    v.push_back(e);
  }
  return v;
}

Workload read_workload(const Json& raw, const std::string& pointer, unsigned nr_cpus,
                       const std::string& base_dir) {
  if (!raw.is_object())
    throw InputError(pointer.empty() ? "/" : pointer, "expected a workload object");
  Json params = Json::object();
  if (auto it = raw.find("params"); it != raw.end()) {
    if (!it->is_object())
      throw InputError(pointer + "/params", "expected an object of parameter defaults");
    params = *it;
  }
  Json body = raw;
  body.erase("params");
  const Json j = substitute(body, params, pointer);
  ObjectReader r(j, pointer, "a workload");
  Workload w;
  w.name = r.str("name", "workload");
  r.str("description", "");
  const Json* procs = r.get("processes");
  if (!procs) throw InputError(pointer.empty() ? "/" : pointer, "missing required key \"processes\"");
  if (!procs->is_array() || procs->empty())
    throw InputError(r.ptr("processes"), "expected a non-empty array of processes");
  std::set<std::string> barriers;
  std::map<unsigned, std::string> cpu_owner;
  std::vector<std::pair<unsigned, std::string>> fork_cpus;
  for (size_t pi = 0; pi < procs->size(); ++pi) {
    const std::string pptr = r.ptr("processes") + "/" + std::to_string(pi);
    ObjectReader pr((*procs)[pi], pptr, "a process");
    Process p;
    p.name = pr.str("name", "p" + std::to_string(pi));
    const Json* threads = pr.get("threads");
    if (!threads) throw InputError(pptr, "missing required key \"threads\"");
    if (!threads->is_array() || threads->empty())
      throw InputError(pr.ptr("threads"), "expected a non-empty array of threads");
    // Mappings are per process, created in program order; a later thread may use
    // what an earlier thread's mmap created (the barrier orders them at run time).
    Scope scope;
    scope.barriers = &barriers;
    scope.base_dir = base_dir;
    scope.fork_cpus = &fork_cpus;
    for (size_t ti = 0; ti < threads->size(); ++ti) {
      const std::string tptr = pr.ptr("threads") + "/" + std::to_string(ti);
      ObjectReader tr((*threads)[ti], tptr, "a thread");
      Thread t;
      t.name = tr.str("name", "t" + std::to_string(ti));
      t.cpu = static_cast<unsigned>(tr.uint("cpu", ti));
      if (t.cpu >= nr_cpus)
        throw InputError(tr.ptr("cpu"), "expected a CPU number below " + std::to_string(nr_cpus) +
                                            " (the machine has " + std::to_string(nr_cpus) +
                                            " CPUs), got " + std::to_string(t.cpu));
      if (cpu_owner.count(t.cpu))
        throw InputError(tr.ptr("cpu"), "not supported yet: two threads pinned to CPU " +
                                            std::to_string(t.cpu) + " (also " + cpu_owner[t.cpu] +
                                            "); the scheduler runs one thread per CPU");
      cpu_owner[t.cpu] = p.name + "/" + t.name;
      const Json* ops = tr.get("ops");
      if (!ops) throw InputError(tptr, "missing required key \"ops\"");
      t.ops = read_ops(*ops, tr.ptr("ops"), scope);
      tr.finish();
      p.threads.push_back(std::move(t));
    }
    pr.finish();
    w.processes.push_back(std::move(p));
  }
  for (const auto& [cpu, fptr] : fork_cpus) {
    if (cpu >= nr_cpus)
      throw InputError(fptr, "expected a CPU number below " + std::to_string(nr_cpus) + ", got " +
                                 std::to_string(cpu));
    if (cpu_owner.count(cpu))
      throw InputError(fptr, "CPU " + std::to_string(cpu) + " already runs " + cpu_owner[cpu] +
                                 "; a forked child needs a CPU no workload thread is pinned to");
  }
  r.finish();
  return w;
}

}  // namespace tlbsim::workload
