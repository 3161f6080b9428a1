#include "workloads/workload_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <set>

#include "base/addr.h"
#include "base/error.h"
#include "base/int_expr.h"
#include "base/json_text.h"
#include "base/params.h"
#include "base/size.h"
#include "workloads/object_reader.h"
#include "workloads/substitute.h"
#include "workloads/workload_checks.h"
#include "workloads/trace_file.h"

namespace tlbsim::workload {

using detail::Expanded;
using detail::ObjectReader;
using detail::expand_templates;
using detail::hex;
using detail::in_copy;
using detail::kMaxNameBytes;
using detail::kMaxTemplateCount;
using detail::mul;
using detail::substitute;

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
    case OpKind::kPin: return "pin";
    case OpKind::kUnpin: return "unpin";
    case OpKind::kPost: return "post";
    case OpKind::kAwait: return "await";
    case OpKind::kRepeat: return "repeat";
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
    case OpKind::kMremap:
    case OpKind::kFork:
    case OpKind::kExit:
    case OpKind::kWait:
    case OpKind::kBarrier:
    case OpKind::kPost:
    case OpKind::kAwait:
    case OpKind::kSleep:
    case OpKind::kRegion:
    case OpKind::kReplay:
    case OpKind::kReclaim:
    case OpKind::kMovePages:
    case OpKind::kMigrate:
    case OpKind::kPin:
    case OpKind::kUnpin:
    case OpKind::kRepeat:
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
      {"migrate", OpKind::kMigrate},   {"replay", OpKind::kReplay},
      {"pin", OpKind::kPin},           {"unpin", OpKind::kUnpin},
      {"post", OpKind::kPost},         {"await", OpKind::kAwait},
      {"repeat", OpKind::kRepeat}};
  return m;
}

std::vector<std::string> keys_of(const std::map<std::string, OpKind>& m) {
  std::vector<std::string> v;
  for (auto& [k, _] : m) v.push_back(k);
  return v;
}

/// Cycles one op may add to a thread's time (sleep, or think time over all its
/// accesses): 2^44 cycles are about two hours at 2.5 GHz, and no sum of such ops
/// comes near wrapping 64 bits.
constexpr uint64_t kMaxOpCycles = uint64_t{1} << 44;
/// Accesses one touch op may make (count × repeat).
constexpr uint64_t kMaxOpAccesses = uint64_t{1} << 44;

/// "size" of an mmap or mremap: a length > 0 below TASK_SIZE.
void read_map_size(ObjectReader& r, Op& op, uint64_t task_size) {
  op.size = r.size("size", 0, true);
  if (op.size == 0) throw InputError(r.ptr("size"), "expected a size > 0, got 0");
  // do_mmap(): a length beyond TASK_SIZE can never be mapped.
  if (op.size > task_size - kPageSize)
    throw InputError(r.ptr("size"), "expected a size below TASK_SIZE, the end of this "
                                    "machine's user address space (" + hex(task_size) +
                                    "), got " + std::to_string(op.size));
}

/// "addr" of an mmap or mremap (if given): 4 KiB-aligned, addr + size inside
/// TASK_SIZE — __get_unmapped_area() / mremap_to() refuse more; the walker would
/// drop the high bits and alias a low address.
void read_map_addr(ObjectReader& r, Op& op, uint64_t task_size) {
  if (!r.get("addr")) return;
  op.addr = r.size("addr", 0);
  if (op.addr % kPageSize) throw InputError(r.ptr("addr"), "expected a 4KiB-aligned address");
  const uint64_t len = (op.size + kPageSize - 1) & kPageMask;
  if (op.addr > task_size - len)
    throw InputError(r.ptr("addr"), "expected addr + size at most TASK_SIZE, the end of "
                                    "this machine's user address space (" + hex(task_size) +
                                    "), got " + hex(op.addr) + " + " + hex(len));
}

void parse_prot(ObjectReader& r, Op& op) {
  // "none" (or "" / "-") is PROT_NONE: the mapping exists, every access faults.
  std::string prot = r.str("prot", "rw");
  if (prot == "none") prot.clear();
  for (char c : prot)
    if (c != 'r' && c != 'w' && c != 'x' && c != '-')
      throw InputError(r.ptr("prot"), "expected a protection like \"none\", \"r\", \"rw\" or "
                                      "\"rwx\", got " + quote_excerpt(prot));
  op.prot_read = prot.find('r') != std::string::npos;
  op.prot_write = prot.find('w') != std::string::npos;
  op.prot_exec = prot.find('x') != std::string::npos;
}

struct SemUse {
  std::string name, ptr;
  uint64_t units;
};

struct Scope {
  std::map<std::string, uint64_t> mappings;  // names mmapped so far in this process → size
  // Literal names the process's threads mmap anywhere → (size, thread): a thread may
  // use a mapping another thread makes later in the file (the run orders them, with
  // post/await or barriers; an access before the mmap is a run-time error).
  std::map<std::string, std::pair<uint64_t, size_t>> other_threads;
  size_t thread = 0;
  std::set<std::string>* barriers;           // every barrier name used
  unsigned depth = 0;      // fork nesting
  bool in_region = false;
  std::string base_dir;                 // for files the workload names
  uint64_t task_size = kTaskSizeX86;    // end of the user address space
  std::vector<std::pair<uint64_t, std::string>>* op_cpus;  // CPU, pointer of each fork/migrate
  uint64_t expanded = 0;  // ops read for this process so far, repeats expanded
  Json env;               // parameters and the enclosing templates' and repeats' indices
  // Every post and await of the workload: semaphore, pointer, units.
  std::vector<SemUse>* sem_posts;
  std::vector<SemUse>* sem_awaits;
};

/// Ops one process may have after `repeat` blocks are expanded (host memory: an op
/// is about 200 bytes). Long loops belong in an op's own count or repeat.
constexpr uint64_t kMaxExpandedOps = 1000000;


/// The window keys of munmap, mprotect, madvise, move_pages and touch: `offset`
/// inside the mapping, `length` (0: to the end) within it. The system calls take
/// page multiples and see the mapping rounded up to whole pages, as Linux does.
void read_window(ObjectReader& r, Op& op, uint64_t mapping_size, bool page_multiples) {
  op.offset = r.size("offset", 0);
  op.length = r.size("length", 0);
  const std::string what = workload::op_name(op.kind);
  if (page_multiples && (op.offset % kPageSize || op.length % kPageSize))
    throw InputError(r.where(), what + " offset and length must be multiples of 4KiB");
  if (page_multiples) mapping_size = (mapping_size + kPageSize - 1) & kPageMask;
  if (op.offset >= mapping_size)
    throw InputError(r.ptr("offset"), "expected an offset inside mapping " + quote_excerpt(op.mapping) +
                                          " (" + format_size(mapping_size) + "), got " +
                                          std::to_string(op.offset));
  if (op.length > mapping_size - op.offset)
    throw InputError(r.ptr("length"), "expected offset + length within mapping " +
                                          quote_excerpt(op.mapping) + " (" +
                                          format_size(mapping_size) + "), got " +
                                          std::to_string(op.offset) + " + " +
                                          std::to_string(op.length));
}

Op read_op(const Json& j, const std::string& ptr, Scope& scope);

// Recursion here follows the document's nesting, which parse_json_text() bounds
// (kMaxJsonDepth): a fork or region body is three levels deeper than its op.
std::vector<Op> read_ops(const Json& j, const std::string& ptr, Scope& scope) {
  if (!j.is_array()) throw InputError(ptr, "expected an array of ops, got " + json_excerpt(j));
  std::vector<Op> ops;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string optr = ptr + "/" + std::to_string(i);
    const Json& oj = j[i];
    if (oj.is_object() && oj.contains("op") && oj["op"] == "repeat") {
      // {"op": "repeat", "count": N, "index": "i", "ops": [...]}: the body N times,
      // "${i}" in it replaced by the iteration, 0 to N-1.
      ObjectReader r(oj, optr, "a repeat op");
      r.get("op");
      if (!r.get("count")) throw InputError(optr, "missing required key \"count\"");
      const uint64_t count = r.uint("count", 0, 1, kMaxExpandedOps);
      const std::string index = r.name("index", false, "i");
      const Json* body = r.get("ops");
      if (!body) throw InputError(optr, "missing required key \"ops\"");
      r.finish();
      const Json outer = scope.env;
      for (uint64_t k = 0; k < count; ++k) {
        Json copy = *body;
        scope.env = outer;
        scope.env[index] = k;
        substitute(copy, scope.env, r.ptr("ops"));
        for (Op& op : read_ops(copy, r.ptr("ops"), scope)) ops.push_back(std::move(op));
        scope.env = outer;
        if (scope.expanded > kMaxExpandedOps)
          throw InputError(r.ptr("count"), "the repeat expands this process to more than " +
                                               std::to_string(kMaxExpandedOps) +
                                               " ops; for long loops use an op's own \"count\" "
                                               "or \"repeat\"");
      }
      continue;
    }
    ops.push_back(read_op(oj, optr, scope));
    ++scope.expanded;
  }
  return ops;
}

Op read_op(const Json& j, const std::string& ptr, Scope& scope) {
  ObjectReader r(j, ptr, "an op");
  const Json* name_j = r.get("op");
  if (!name_j) throw InputError(ptr, "missing required key \"op\"; valid ops: " + join_choices(keys_of(op_names())));
  if (!name_j->is_string()) throw InputError(r.ptr("op"), "expected an op name string, got " + json_excerpt(*name_j));
  const std::string name = name_j->get<std::string>();
  auto it = op_names().find(name);
  if (it == op_names().end()) {
    std::string msg = "unknown op " + quote_excerpt(name);
    std::string near = closest_match(name.substr(0, 64), keys_of(op_names()));
    if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
    throw InputError(r.ptr("op"), msg + "; valid ops: " + join_choices(keys_of(op_names())));
  }
  Op op;
  op.kind = it->second;
  op.pointer = ptr;
  if (!op_supported(op.kind)) {
    std::vector<std::string> supported;
    for (const auto& [n, k] : op_names())
      if (op_supported(k)) supported.push_back(n);
    throw InputError(r.ptr("op"), std::string("not supported yet: op \"") + name +
                                      "\" is part of the workload language but this version "
                                      "cannot execute it; supported ops: " +
                                      join_choices(supported));
  }
  // The mapping an op names, and its size as its mmap declared it.
  auto require_mapping = [&]() -> uint64_t {
    op.mapping = r.str("mapping", "", true);
    auto m = scope.mappings.find(op.mapping);
    if (m == scope.mappings.end()) {
      auto o = scope.other_threads.find(op.mapping);
      if (o != scope.other_threads.end() && o->second.second != scope.thread) return o->second.first;
    }
    if (m == scope.mappings.end()) {
      std::vector<std::string> known;
      for (const auto& [k, _] : scope.mappings) known.push_back(k);
      if (known.size() > 8) known.resize(8);
      throw InputError(r.ptr("mapping"), "no mapping named " + quote_excerpt(op.mapping) +
                                             " is created by an earlier mmap of this process" +
                                             (known.empty() ? "" : "; known: " + join_choices(known)));
    }
    return m->second;
  };
  switch (op.kind) {
    case OpKind::kMmap: {
      op.mapping = r.name("name", true);
      read_map_size(r, op, scope.task_size);
      parse_prot(r, op);
      op.shared = r.boolean("shared", false);
      if (op.shared) throw InputError(r.ptr("shared"), "not supported yet: shared mappings");
      op.populate = r.boolean("populate", false);
      std::string thp = r.choice("thp", "default", {"default", "hugepage", "nohugepage"});
      op.thp = thp == "hugepage" ? ThpHint::kHugePage
                                 : thp == "nohugepage" ? ThpHint::kNoHugePage : ThpHint::kDefault;
      op.align = r.size("align", 0);
      if (op.align & (op.align - 1)) throw InputError(r.ptr("align"), "expected a power of two");
      if (op.align > (uint64_t{1} << 30))
        throw InputError(r.ptr("align"), "expected an alignment of at most 1GiB (the largest "
                                         "page size), got " + std::to_string(op.align));
      read_map_addr(r, op, scope.task_size);
      op.fixed = r.boolean("fixed", false);
      if (op.fixed && !op.addr) throw InputError(r.ptr("fixed"), "\"fixed\": true needs an \"addr\"");
      if (r.get("file")) throw InputError(r.ptr("file"), "not supported yet: file mappings");
      if (r.get("hugetlb")) throw InputError(r.ptr("hugetlb"), "not supported yet: hugetlb mappings");
      scope.mappings[op.mapping] = op.size;
      break;
    }
    case OpKind::kTouch: {
      const uint64_t mapping_size = require_mapping();
      read_window(r, op, mapping_size, false);
      std::string acc = r.choice("access", name == "access" ? "read" : "write", {"read", "write", "exec"});
      op.access = acc == "read" ? AccessKind::kRead : acc == "write" ? AccessKind::kWrite : AccessKind::kExec;
      std::string pat = r.choice("pattern", "sequential", {"sequential", "random", "strided", "zipf"});
      op.pattern = pat == "sequential" ? Pattern::kSequential
                   : pat == "random"   ? Pattern::kRandom
                   : pat == "strided"  ? Pattern::kStrided
                                       : Pattern::kZipf;
      op.stride = r.size("stride", 4096);
      if (op.stride == 0) throw InputError(r.ptr("stride"), "expected a stride > 0, got 0");
      if (op.stride > mapping_size)
        throw InputError(r.ptr("stride"), "expected a stride within mapping " + quote_excerpt(op.mapping) +
                                              " (" + format_size(mapping_size) + "), got " +
                                              std::to_string(op.stride));
      op.count = r.uint("count", 0, 0, kMaxOpAccesses);
      op.repeat = r.uint("repeat", 1, 1, kMaxOpAccesses);
      op.think_cycles = r.uint("think_cycles", 0, 0, kMaxOpCycles);
      op.seed = r.uint("seed", 1);
      op.zipf_theta = r.number("zipf_theta", 0.99);
      if (!(op.zipf_theta > 0 && op.zipf_theta < 10))
        throw InputError(r.ptr("zipf_theta"), "expected 0 < zipf_theta < 10, got " +
                                                  json_excerpt(*r.get("zipf_theta")));
      // Accesses per repetition: count, or one per page (or stride) of the window.
      const uint64_t window = op.length ? op.length : mapping_size - op.offset;
      const uint64_t per_rep = op.count ? op.count : std::max<uint64_t>(1, window / op.stride);
      const auto accesses = mul(per_rep, op.repeat);
      if (!accesses || *accesses > kMaxOpAccesses)
        throw InputError(r.ptr("repeat"), "expected at most 2^44 accesses per op (count or one "
                                          "per " + std::string(op.pattern == Pattern::kStrided ? "stride" : "page") +
                                          ", times repeat), got " + std::to_string(per_rep) +
                                          " x " + std::to_string(op.repeat));
      const auto think = mul(*accesses, op.think_cycles);
      if (!think || *think > kMaxOpCycles)
        throw InputError(r.ptr("think_cycles"), "expected at most 2^44 cycles of think time per op, "
                                                "got " + std::to_string(op.think_cycles) + " x " +
                                                std::to_string(*accesses) + " accesses");
      break;
    }
    case OpKind::kMunmap:
    case OpKind::kMovePages:
    case OpKind::kPin:
    case OpKind::kUnpin:
      read_window(r, op, require_mapping(), true);
      break;
    case OpKind::kMprotect:
      read_window(r, op, require_mapping(), true);
      if (!r.get("prot")) throw InputError(ptr, "missing required key \"prot\" (e.g. \"r\", \"rw\")");
      parse_prot(r, op);
      break;
    case OpKind::kMadvise:
      read_window(r, op, require_mapping(), true);
      op.advice = r.choice("advice", "", {"dontneed", "free", "hugepage", "nohugepage",
                                          "pageout", "cold", "collapse"});
      if (op.advice == "collapse")
        throw InputError(r.ptr("advice"), "not supported yet: MADV_collapse (khugepaged is not "
                                          "modelled yet)");
      break;
    case OpKind::kMremap: {
      // mremap(start, size of the mapping, size, flags, addr): the whole mapping,
      // which then has the new size (and address, if it moved).
      require_mapping();
      read_map_size(r, op, scope.task_size);
      op.maymove = r.boolean("maymove", true);
      op.fixed = r.boolean("fixed", false);
      read_map_addr(r, op, scope.task_size);
      if (r.get("addr") && !op.fixed)
        throw InputError(r.ptr("addr"), "\"addr\" is the target of \"fixed\": true "
                                        "(MREMAP_FIXED); without it the kernel places a move");
      if (op.fixed && !r.get("addr")) throw InputError(r.ptr("fixed"), "\"fixed\": true needs an \"addr\"");
      if (op.fixed && !op.maymove)
        throw InputError(r.ptr("fixed"), "\"fixed\": true needs \"maymove\": true "
                                         "(MREMAP_FIXED without MREMAP_MAYMOVE is EINVAL)");
      if (r.get("dontunmap"))
        throw InputError(r.ptr("dontunmap"), "not supported yet: MREMAP_DONTUNMAP");
      scope.mappings[op.mapping] = op.size;
      break;
    }
    case OpKind::kReclaim:
      op.pages = r.uint("pages", 0);
      op.target_free = r.size("target_free", 0);
      if (!op.pages && !op.target_free)
        throw InputError(ptr, "reclaim needs \"pages\" (a page count) and/or \"target_free\" "
                              "(a size), both > 0");
      break;
    case OpKind::kFork: {
      // "cpu" pins the child (sched_setaffinity in the child); without it the
      // scheduler places it (wake_up_new_task) and may move it.
      if (r.get("cpu")) {
        const uint64_t cpu = r.uint("cpu", 0);
        op.cpu = static_cast<int>(std::min<uint64_t>(cpu, INT32_MAX));  // range-checked below
        scope.op_cpus->emplace_back(cpu, r.ptr("cpu"));
      }
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
      op.name = r.name("name", true);
      op.spin = r.choice("wait", "block", {"block", "spin"}) == "spin";
      scope.barriers->insert(op.name);
      break;
    case OpKind::kPost:
    case OpKind::kAwait:
      // A counting semaphore shared by the whole workload (sem_post / sem_wait on a
      // process-shared semaphore): await blocks until a post made it positive.
      op.name = r.name("name", true);
      if (op.kind == OpKind::kAwait)
        op.spin = r.choice("wait", "block", {"block", "spin"}) == "spin";
      else
        op.count = r.uint("count", 1, 1, 0xffffffffu);  // units added at once
      (op.kind == OpKind::kPost ? scope.sem_posts : scope.sem_awaits)
          ->push_back({op.name, r.ptr("name"), op.kind == OpKind::kPost ? op.count : 1});
      break;
    case OpKind::kSleep:
      op.cycles = r.uint("cycles", 0, 0, kMaxOpCycles);
      // "block": nanosleep(), the CPU runs another task or idles; "spin": a busy
      // loop in user mode that keeps the CPU.
      op.spin = r.choice("wait", "block", {"block", "spin"}) == "spin";
      break;
    case OpKind::kMigrate: {
      // sched_setaffinity(0, {cpu}): the calling thread moves to that CPU.
      if (!r.get("cpu")) throw InputError(ptr, "missing required key \"cpu\": the CPU to move to");
      const uint64_t cpu = r.uint("cpu", 0);
      op.cpu = static_cast<int>(std::min<uint64_t>(cpu, INT32_MAX));  // range-checked below
      scope.op_cpus->emplace_back(cpu, r.ptr("cpu"));
      break;
    }
    case OpKind::kReplay: {
      const Json* maps = r.get("mappings");
      if (!maps || !maps->is_array() || maps->empty())
        throw InputError(maps ? r.ptr("mappings") : ptr,
                         "expected \"mappings\": a non-empty array of mapping names");
      std::vector<uint64_t> sizes;
      for (size_t i = 0; i < maps->size(); ++i) {
        const Json& m = (*maps)[i];
        const std::string mp = r.ptr("mappings") + "/" + std::to_string(i);
        if (!m.is_string()) throw InputError(mp, "expected a mapping name, got " + json_excerpt(m));
        auto known = scope.mappings.find(m.get<std::string>());
        uint64_t size = 0;
        if (known != scope.mappings.end()) {
          size = known->second;
        } else if (auto o = scope.other_threads.find(m.get<std::string>());
                   o != scope.other_threads.end() && o->second.second != scope.thread) {
          size = o->second.first;
        } else {
          throw InputError(mp, "no mapping named " + quote_excerpt(m.get<std::string>()) +
                                   " is created by an earlier mmap of this process");
        }
        op.mappings.push_back(m.get<std::string>());
        sizes.push_back(size);
      }
      std::string file = r.str("trace", "", true);
      if (!file.empty() && file[0] != '/') file = scope.base_dir + "/" + file;
      op.trace_file = file;
      op.trace_start = r.uint("start", 0);
      op.trace_runs = r.uint("runs", 0);
      try {
        // Checked now, streamed again when it runs: memory independent of its length.
        op.trace_runs = validate_trace_file(file, sizes, op.trace_start, op.trace_runs);
      } catch (const InputError& e) {
        if (e.file().empty()) throw InputError(r.ptr("trace"), e.message());
        throw;
      }
      break;
    }
    case OpKind::kRegion: {
      // Region names are stat paths (system.regions.region[NAME]) and CSV cells.
      op.name = r.name("name", true, "", "[],\"");
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

using detail::check_barriers;
using detail::thread_mmaps;

/// One thread of a process, its ops read into `scope` (the process's mappings).
Thread read_thread(const Expanded& te, size_t ti, unsigned nr_cpus, Scope& scope) {
  const std::string cpus_text = std::to_string(nr_cpus);
  ObjectReader tr(te.value, te.ptr, "a thread");
  Thread t;
  t.name = tr.name("name", false, "t" + std::to_string(ti));
  // "cpu" pins the thread; without it the scheduler places it. Any number of
  // threads may share a CPU. Range-checked as 64 bits before it narrows: 2^32
  // is not CPU 0.
  if (tr.get("cpu")) {
    const uint64_t cpu = tr.uint("cpu", 0);
    if (cpu >= nr_cpus)
      throw InputError(tr.ptr("cpu"), "expected a CPU number below " + cpus_text +
                                          " (the machine has " + cpus_text + " CPUs), got " +
                                          std::to_string(cpu));
    t.cpu = static_cast<int>(cpu);
  }
  const Json* ops = tr.get("ops");
  if (!ops) throw InputError(te.ptr, "missing required key \"ops\"");
  scope.env = te.env;
  t.ops = read_ops(*ops, tr.ptr("ops"), scope);
  tr.finish();
  // The CPUs its fork and migrate ops name.
  for (const auto& [cpu, fptr] : *scope.op_cpus)
    if (cpu >= nr_cpus)
      throw InputError(fptr, "expected a CPU number below " + cpus_text + " (the machine has " +
                                 cpus_text + " CPUs), got " + std::to_string(cpu));
  scope.op_cpus->clear();
  return t;
}

}  // namespace

Workload read_workload(const Json& raw, const std::string& pointer, unsigned nr_cpus,
                       const std::string& base_dir, uint64_t task_size) {
  if (!raw.is_object())
    throw InputError(pointer.empty() ? "/" : pointer, "expected a workload object, got " +
                                                          json_excerpt(raw));
  Json params = Json::object();
  if (auto it = raw.find("params"); it != raw.end()) {
    if (!it->is_object())
      throw InputError(pointer + "/params", "expected an object of parameter defaults, got " +
                                                json_excerpt(*it));
    params = *it;
  }
  // nr_cpus: the machine's CPU count, so a workload can size itself to the machine
  // (a sweep over machine.cpus).
  if (params.contains("nr_cpus"))
    throw InputError(pointer + "/params/nr_cpus",
                     "\"nr_cpus\" is the machine's CPU count, set by tlbsim; choose another name");
  // A parameter's value may use the parameters before it and nr_cpus
  // ("child_cpu": "${threads}"): each is substituted in declaration order.
  Json known = Json::object();
  known["nr_cpus"] = nr_cpus;
  for (auto it = params.begin(); it != params.end(); ++it) {
    substitute(it.value(), known, pointer + "/params/" + json_pointer_escape(it.key()));
    known[it.key()] = it.value();
  }
  params["nr_cpus"] = nr_cpus;
  Json j = raw;
  j.erase("params");
  substitute(j, params, pointer);
  ObjectReader r(j, pointer, "a workload");
  Workload w;
  w.name = r.name("name", false, "workload");
  r.str("description", "");
  const Json* procs = r.get("processes");
  if (!procs) throw InputError(pointer.empty() ? "/" : pointer, "missing required key \"processes\"");
  std::set<std::string> barriers;
  std::vector<SemUse> sem_posts, sem_awaits;
  std::vector<std::pair<uint64_t, std::string>> op_cpus;
  uint64_t nr_threads = 0;
  const std::vector<Expanded> processes = expand_templates(*procs, r.ptr("processes"), params, "process");
  for (size_t pi = 0; pi < processes.size(); ++pi) {
    const Expanded& pe = processes[pi];
    const std::string& pptr = pe.ptr;
    ObjectReader pr(pe.value, pptr, "a process");
    Process p;
    // Mappings are per process, created in program order; a later thread may use
    // what an earlier thread's mmap created (the barrier orders them at run time).
    Scope scope;
    scope.barriers = &barriers;
    scope.base_dir = base_dir;
    scope.task_size = task_size;
    scope.op_cpus = &op_cpus;
    scope.sem_posts = &sem_posts;
    scope.sem_awaits = &sem_awaits;
    std::vector<Expanded> ts;
    try {
      p.name = pr.name("name", false, "p" + std::to_string(pi));
      const Json* threads = pr.get("threads");
      if (!threads) throw InputError(pptr, "missing required key \"threads\"");
      ts = expand_templates(*threads, pr.ptr("threads"), pe.env, "thread", pe.copy);
      nr_threads += ts.size();
      if (nr_threads > kMaxTemplateCount)
        throw InputError(pr.ptr("threads"), "the workload has more than " +
                                                std::to_string(kMaxTemplateCount) + " threads");
    } catch (const InputError& e) {
      throw in_copy(e, pe);
    }
    scope.other_threads = thread_mmaps(ts);
    for (size_t ti = 0; ti < ts.size(); ++ti) {
      scope.thread = ti;
      try {
        p.threads.push_back(read_thread(ts[ti], ti, nr_cpus, scope));
      } catch (const InputError& e) {
        throw in_copy(e, ts[ti]);
      }
    }
    try {
      pr.finish();
    } catch (const InputError& e) {
      throw in_copy(e, pe);
    }
    w.processes.push_back(std::move(p));
  }
  r.finish();
  check_barriers(w, barriers);
  // An await needs a post of its semaphore somewhere in the workload; more awaits
  // than posts would leave the last ones waiting forever.
  std::map<std::string, uint64_t> balance;
  for (const auto& u : sem_posts) balance[u.name] += u.units;
  for (const auto& [name, ptr, units] : sem_awaits)
    if (balance[name]-- == 0)
      throw InputError(ptr, "semaphore " + quote_excerpt(name) + " is awaited more often than it "
                            "is posted in the whole workload: the last await would wait forever");
  return w;
}

}  // namespace tlbsim::workload
