// capture-import: valgrind logs of one program run (tools/capture: lackey memory
// trace + --trace-syscalls + --trace-sched, one log per process image) to one
// tlbsim workload. Each thread's accesses become replay segments of its own trace
// file, with the memory-management system calls at their place in its stream;
// threads are workload threads, forked children fork ops, an exec the teardown of
// the old image. Ordering between threads of a process that the serialised
// valgrind run implies for memory management — a mapping made by one thread and
// used by another, an unmap after another thread's accesses, a thread starting
// after its clone() — becomes post/await semaphore edges (docs/workloads.md).
//
//   capture-import LOGDIR -o OUT.json [--gap-pages N] [--quiet]
//
// Streaming: each log is read twice (pass 1 finds the memory the program touches
// outside any traced mapping — the executable, ld.so, the stack, which the kernel
// or valgrind mapped before tracing began — pass 2 writes), with a 4 MiB buffer;
// memory grows with the program's footprint and system calls, not with the trace.
//
// One file on purpose (for now): the importer is one state machine over one stream —
// address space, thread streams and ordering edges change together at every line —
// and ~1,000 lines; the log parsing (LineReader, parse_num, Syscall) is the part to
// move out first when it grows.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/addr.h"
#include "base/file_util.h"
#include "base/json_text.h"

namespace fs = std::filesystem;
using tlbsim::Json;

namespace {

constexpr uint64_t kPage = 4096;
// The smallest user address space tlbsim models (x86-64, 4-level paging).
constexpr uint64_t kTaskSize = (uint64_t{1} << 47) - kPage;

uint64_t page_down(uint64_t a) { return a & ~(kPage - 1); }
uint64_t page_up(uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }

[[noreturn]] void die(const std::string& msg, int code = 2) {
  std::cerr << "capture-import: " << msg << "\n";
  std::exit(code);
}

/// Lines of a file through a large buffer.
class LineReader {
 public:
  explicit LineReader(const fs::path& p) : m_buf(4 << 20) {
    m_f = std::fopen(p.c_str(), "rb");
    if (!m_f) die(p.string() + ": cannot read");
  }
  ~LineReader() { std::fclose(m_f); }
  bool next(const char*& b, const char*& e) {
    for (;;) {
      const char* nl = static_cast<const char*>(std::memchr(m_buf.data() + m_pos, '\n', m_end - m_pos));
      if (nl) {
        b = m_buf.data() + m_pos;
        e = nl;
        m_pos = static_cast<size_t>(nl - m_buf.data()) + 1;
        bytes += static_cast<uint64_t>(e - b) + 1;
        return true;
      }
      if (m_eof) {
        if (m_pos == m_end) return false;
        b = m_buf.data() + m_pos;
        e = m_buf.data() + m_end;
        m_pos = m_end;
        return true;
      }
      std::memmove(m_buf.data(), m_buf.data() + m_pos, m_end - m_pos);
      m_end -= m_pos;
      m_pos = 0;
      if (m_end == m_buf.size()) m_buf.resize(m_buf.size() * 2);
      const size_t n = std::fread(m_buf.data() + m_end, 1, m_buf.size() - m_end, m_f);
      if (n == 0) m_eof = true;
      m_end += n;
    }
  }
  uint64_t bytes = 0;

 private:
  std::FILE* m_f;
  std::vector<char> m_buf;
  size_t m_pos = 0, m_end = 0;
  bool m_eof = false;
};

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// A number as valgrind prints syscall arguments: 0x-prefixed hex or decimal
/// (clone's flags: bare hex, `hex` = true).
uint64_t parse_num(const char*& p, const char* e, bool hex = false) {
  while (p < e && (*p == ' ' || *p == ',' || *p == '(')) ++p;
  uint64_t x = 0;
  if (p + 1 < e && p[0] == '0' && p[1] == 'x') {
    p += 2;
    hex = true;
  }
  if (hex) {
    for (int d; p < e && (d = hexval(*p)) >= 0; ++p) x = x * 16 + static_cast<uint64_t>(d);
  } else {
    for (; p < e && *p >= '0' && *p <= '9'; ++p) x = x * 10 + static_cast<uint64_t>(*p - '0');
  }
  // Skip a pointer's "(string)" annotation.
  if (p < e && *p == '(') {
    int depth = 0;
    for (; p < e; ++p) {
      if (*p == '(') ++depth;
      if (*p == ')' && --depth == 0) {
        ++p;
        break;
      }
    }
  }
  return x;
}

struct Syscall {
  std::string name;
  std::vector<uint64_t> args;
  bool done = false, ok = false;
  uint64_t result = 0;
  uint64_t child = 0;  // fork: "created child N"
};

/// The "Success(0x...)" / "Failure(" of a line, if any.
void parse_result(const std::string_view s, Syscall& c) {
  auto ok = s.find("Success(");
  if (ok != std::string_view::npos) {
    const char* p = s.data() + ok + 8;
    c.result = parse_num(p, s.data() + s.size());
    c.ok = c.done = true;
  } else if (s.find("Failure(") != std::string_view::npos) {
    c.done = true;
  }
}

struct MappingState {
  std::string name;
  uint64_t base = 0;
  uint32_t epoch = 0;           // bumped at every event on it
  int event_thread = -1;        // thread of the last event
  uint64_t event_sem = 0;       // semaphore posted after it (0: none)
  std::vector<int> readers;     // threads that accessed it since
};

struct Piece {
  uint64_t end;
  uint32_t id;
};

struct Stats {
  uint64_t lines = 0, accesses = 0, runs = 0, dropped = 0, syscalls = 0, file_maps = 0,
           shared_maps = 0, mremaps = 0, ignored_madvise = 0, merged_child_threads = 0,
           edges = 0, execs = 0, forks = 0, threads = 0;
};

class Importer;

/// One output stream: a workload thread or a forked child.
struct Stream {
  Json ops = Json::array();
  std::string trace_rel;  // relative to the workload file
  std::FILE* trace = nullptr;
  std::string buf;
  uint64_t written = 0;
  // the open replay segment
  bool seg = false;
  uint64_t seg_start = 0, seg_runs = 0;
  std::vector<uint32_t> seg_maps;  // mapping ids, in the segment's index order
  // the pending run
  bool run = false;
  uint32_t run_idx = 0;
  uint64_t run_page = 0, run_count = 0;
  char run_kind = 'r';
  // the mapping of the last access (a cache) and its index in the segment
  uint64_t c_start = 1, c_end = 0, c_base = 0;
  uint32_t c_id = 0, c_epoch = 0, c_idx = 0, c_layout = 0;
  bool c_in_seg = false;
  std::unordered_map<uint32_t, uint64_t> synced;  // mapping id → event semaphore seen
  bool exited = false;
  /// Replay segments; the ops hold {"op": "replay", "_seg": i} until finish()
  /// splits them where posts go and fills in their byte ranges.
  struct Segment {
    uint64_t start, runs;
    std::vector<uint32_t> maps;
    std::vector<std::pair<uint64_t, uint64_t>> posts;  // (after run k, semaphore)
  };
  std::vector<Segment> segs;
  /// Where this thread's last access to each mapping is: (segment, runs after it).
  std::unordered_map<uint32_t, std::pair<uint64_t, uint64_t>> last;
  std::pair<uint64_t, uint64_t>* c_last = nullptr;  // `last` of the cached mapping

  void flush_run() {
    if (!run) return;
    char line[64];
    const int n = std::snprintf(line, sizeof line, "%u %llx %c %llu\n", run_idx,
                                static_cast<unsigned long long>(run_page), run_kind,
                                static_cast<unsigned long long>(run_count));
    buf.append(line, static_cast<size_t>(n));
    written += static_cast<uint64_t>(n);
    ++seg_runs;
    run = false;
    if (buf.size() >= (1 << 20)) {
      std::fwrite(buf.data(), 1, buf.size(), trace);
      buf.clear();
    }
  }
};

class Importer {
 public:
  Importer(fs::path dir, fs::path out, uint64_t gap) : m_dir(std::move(dir)), m_out(std::move(out)), m_gap(gap) {
    m_traces = m_out.parent_path() / (m_out.stem().string() + ".d");
    fs::create_directories(m_traces);
  }

  Stats st;
  Json workload;
  std::string root_command() const {
    return m_command.empty() ? std::string() : m_command.begin()->second;
  }

  void run();

 private:
  struct Proc {
    std::map<uint64_t, Piece> live;
    uint32_t layout = 1;  // bumped at every change of `live`
    std::unordered_map<uint32_t, MappingState*> mstate;
    std::vector<Stream*> threads;            // by thread index (one for a forked child)
    std::map<uint64_t, int> vg_thread;       // valgrind tid → thread index
    std::vector<std::pair<int, uint64_t>> pending_clones;  // (creator, semaphore)
    std::unordered_map<uint64_t, Syscall> pending;  // vg tid → syscall awaiting its result
    uint64_t last_tid = 1;
    int cur = 0;
    bool child = false;  // a forked child: every thread merges into one stream
    uint64_t heap_start = 0, heap_end = 0;
    int live_children = 0;
    int live_threads = 1;  // threads that exist now (cloned ones included)
    int nthreads_total = 1;  // threads the process makes (from pass 1)
    uint64_t pid = 0;
    size_t image = 0;  // which exec image of the process
    bool done = false;
    // pass 1
    bool collect = false;
    std::unordered_set<uint64_t> loose;
    std::vector<std::pair<uint64_t, uint64_t>> ever;
  };

  fs::path m_dir, m_out, m_traces;
  uint64_t m_gap;
  uint32_t m_next_id = 0;
  uint64_t m_next_sem = 1;
  std::vector<std::unique_ptr<MappingState>> m_maps;
  std::vector<std::unique_ptr<Stream>> m_streams;
  std::map<uint64_t, std::vector<fs::path>> m_logs;  // pid → its logs, in image order
  std::map<uint64_t, std::string> m_command;
  uint64_t m_progress_bytes = 0, m_total_bytes = 0;
  bool m_reported = false;
  std::string m_child_stream;  // the stream run_process() made for a forked child
  std::chrono::steady_clock::time_point m_t0 = std::chrono::steady_clock::now(), m_last_report = m_t0;

  Stream& new_stream(const std::string& label) {
    m_streams.push_back(std::make_unique<Stream>());
    Stream& s = *m_streams.back();
    s.trace_rel = m_traces.filename().string() + "/" + label + ".trace";
    s.trace = std::fopen((m_traces / (label + ".trace")).c_str(), "wb");
    if (!s.trace) die((m_traces / (label + ".trace")).string() + ": cannot write");
    return s;
  }

  MappingState& mapping(uint32_t id) { return *m_maps[id]; }

  uint32_t new_mapping(const std::string& prefix, uint64_t base) {
    auto m = std::make_unique<MappingState>();
    m->name = prefix + std::to_string(m_next_id);
    m->base = base;
    m_maps.push_back(std::move(m));
    return m_next_id++;
  }

  // ---- the output side
  void close_segment(Stream& s) {
    s.flush_run();
    if (!s.seg) return;
    if (s.seg_runs) {
      s.ops.push_back({{"op", "replay"}, {"_seg", s.segs.size()}});
      s.segs.push_back({s.seg_start, s.seg_runs, s.seg_maps, {}});
    }
    s.seg = false;
    s.seg_maps.clear();
    s.c_in_seg = false;
  }
  /// Thread `b` posts `sem` right after its last access to mapping `id`, inside a
  /// replay segment if need be (it is split there when the traces are complete).
  void post_after_last_access(Stream& b, uint32_t id, uint64_t sem) {
    b.flush_run();  // later accesses to the same page start a new run
    auto it = b.last.find(id);
    if (it == b.last.end() || it->second.first >= b.segs.size() + (b.seg ? 1 : 0)) {
      post(b, sem, 1);
      return;
    }
    if (b.seg && it->second.first == b.segs.size()) close_segment(b);  // the open one
    if (it->second.first >= b.segs.size()) {  // an empty open segment: nothing after it
      post(b, sem, 1);
      return;
    }
    b.segs[it->second.first].posts.emplace_back(it->second.second, sem);
  }
  void emit(Stream& s, Json op) {
    close_segment(s);
    s.ops.push_back(std::move(op));
  }

  void post(Stream& s, uint64_t sem, uint64_t count) {
    Json op = {{"op", "post"}, {"name", "s" + std::to_string(sem)}};
    if (count != 1) op["count"] = count;
    emit(s, std::move(op));
  }
  void await(Stream& s, uint64_t sem) {
    emit(s, {{"op", "await"}, {"name", "s" + std::to_string(sem)}});
    ++st.edges;
  }

  /// Before thread `a` changes mapping `id`: every other thread that accessed it
  /// since its last event has done so (it posts where it stands; `a` waits).
  void before_event(Proc& p, uint32_t id) {
    // A forked child is one stream (and its own process): no edges.
    if (p.collect || p.child) return;
    MappingState& m = mapping(id);
    // After the last change another thread made (an mprotect, then this munmap).
    if (m.event_sem && m.event_thread != p.cur) {
      uint64_t& seen = p.threads[static_cast<size_t>(p.cur)]->synced[id];
      if (seen != m.event_sem) {
        seen = m.event_sem;
        await(*p.threads[static_cast<size_t>(p.cur)], m.event_sem);
      }
    }
    if (p.threads.size() < 2) return;
    for (int b : m.readers) {
      if (b == p.cur) continue;
      const uint64_t sem = m_next_sem++;
      post_after_last_access(*p.threads[static_cast<size_t>(b)], id, sem);
      await(*p.threads[static_cast<size_t>(p.cur)], sem);
    }
    m.readers.clear();
  }
  /// After the event: threads that use the mapping later wait for it.
  void after_event(Proc& p, uint32_t id) {
    if (p.collect) return;
    MappingState& m = mapping(id);
    ++m.epoch;
    if (p.child) return;  // the parent's ordering state is not the child's
    m.event_thread = p.cur;
    m.event_sem = 0;
    // With one live thread, every later thread is created after this point (its
    // clone orders it): nobody needs to wait for it.
    if (p.nthreads_total < 2 || p.live_threads < 2) return;
    m.event_sem = m_next_sem++;
    // One unit per other thread of the process that may wait for it.
    post(*p.threads[static_cast<size_t>(p.cur)], m.event_sem,
         static_cast<uint64_t>(p.nthreads_total - 1));
  }

  // ---- the address space
  /// Pieces overlapping [a, b), as (start, piece).
  std::vector<std::pair<uint64_t, Piece>> overlaps(Proc& p, uint64_t a, uint64_t b) {
    std::vector<std::pair<uint64_t, Piece>> v;
    auto it = p.live.upper_bound(a);
    if (it != p.live.begin()) --it;
    for (; it != p.live.end() && it->first < b; ++it)
      if (it->second.end > a) v.push_back(*it);
    return v;
  }
  /// Removes [a, b) from the live map, emitting one munmap op per overlapped piece.
  void unmap_range(Proc& p, uint64_t a, uint64_t b) {
    for (const auto& [start, piece] : overlaps(p, a, b)) {
      const uint64_t lo = std::max(a, start), hi = std::min(b, piece.end);
      before_event(p, piece.id);
      p.live.erase(start);
      if (start < lo) p.live[start] = {lo, piece.id};
      if (hi < piece.end) p.live[hi] = {piece.end, piece.id};
      ++p.layout;
      if (!p.collect) {
        const MappingState& m = mapping(piece.id);
        emit(*p.threads[static_cast<size_t>(p.cur)],
             {{"op", "munmap"}, {"mapping", m.name}, {"offset", lo - m.base}, {"length", hi - lo}});
      }
      after_event(p, piece.id);
    }
  }
  void map_range(Proc& p, uint64_t a, uint64_t b, const std::string& prot, const char* prefix) {
    if (a >= b || b > kTaskSize || a < kPage) return;
    unmap_range(p, a, b);  // MAP_FIXED semantics
    if (p.collect) {
      p.ever.emplace_back(a, b);
      p.live[a] = {b, 0};
      ++p.layout;
      return;
    }
    const uint32_t id = new_mapping(prefix, a);
    p.live[a] = {b, id};
    ++p.layout;
    emit(*p.threads[static_cast<size_t>(p.cur)],
         {{"op", "mmap"}, {"name", mapping(id).name}, {"size", b - a}, {"addr", a}, {"fixed", true}, {"prot", prot}});
    after_event(p, id);
  }
  void window_op(Proc& p, uint64_t a, uint64_t b, Json base) {
    for (const auto& [start, piece] : overlaps(p, a, b)) {
      if (p.collect) continue;
      const uint64_t lo = std::max(a, start), hi = std::min(b, piece.end);
      before_event(p, piece.id);
      const MappingState& m = mapping(piece.id);
      Json op = base;
      op["mapping"] = m.name;
      op["offset"] = lo - m.base;
      op["length"] = hi - lo;
      emit(*p.threads[static_cast<size_t>(p.cur)], std::move(op));
      after_event(p, piece.id);
    }
  }

  static std::string prot_text(uint64_t prot) {
    std::string s;
    if (prot & 1) s += 'r';
    if (prot & 2) s += 'w';
    if (prot & 4) s += 'x';
    return s.empty() ? "none" : s;
  }

  // ---- accesses
  void access(Proc& p, uint64_t addr, uint64_t size, char kind) {
    ++st.accesses;
    const uint64_t first = page_down(addr);
    if (first >= kTaskSize || size > kPage) {  // beyond the user address space, or malformed
      ++st.dropped;
      return;
    }
    const uint64_t last = page_down(addr + (size ? size - 1 : 0));
    for (uint64_t pg = first; pg <= last; pg += kPage) access_page(p, pg, kind);
  }
  void access_page(Proc& p, uint64_t pg, char kind) {
    if (pg < kPage || pg >= kTaskSize) {
      ++st.dropped;
      return;
    }
    if (p.collect) {
      auto it = p.live.upper_bound(pg);
      if (it == p.live.begin() || (--it)->second.end <= pg) p.loose.insert(pg);
      return;
    }
    Stream& s = *p.threads[static_cast<size_t>(p.cur)];
    if (!(pg >= s.c_start && pg < s.c_end && s.c_layout == p.layout && s.c_epoch == mapping_epoch(s.c_id))) {
      auto it = p.live.upper_bound(pg);
      if (it == p.live.begin() || (--it)->second.end <= pg) {
        ++st.dropped;
        return;
      }
      const uint32_t id = it->second.id;
      MappingState& m = mapping(id);
      // Ordering: a mapping another thread changed is used only after that change.
      if (!p.child && m.event_sem && m.event_thread != p.cur) {
        uint64_t& seen = s.synced[id];
        if (seen != m.event_sem) {
          seen = m.event_sem;
          await(s, m.event_sem);
        }
      }
      if (!p.child && std::find(m.readers.begin(), m.readers.end(), p.cur) == m.readers.end())
        m.readers.push_back(p.cur);
      s.c_start = it->first;
      s.c_end = it->second.end;
      s.c_id = id;
      s.c_base = m.base;
      s.c_epoch = m.epoch;
      s.c_layout = p.layout;
      s.c_in_seg = false;
      s.c_last = &s.last[id];
    }
    if (!s.c_in_seg || !s.seg) {
      if (!s.seg) {
        s.seg = true;
        s.seg_start = s.written;
        s.seg_runs = 0;
      }
      auto f = std::find(s.seg_maps.begin(), s.seg_maps.end(), s.c_id);
      if (f == s.seg_maps.end()) {
        s.seg_maps.push_back(s.c_id);
        f = s.seg_maps.end() - 1;
      }
      s.c_idx = static_cast<uint32_t>(f - s.seg_maps.begin());
      s.c_in_seg = true;
    }
    const uint64_t page = (pg - s.c_base) / kPage;
    // After this access: the pending run (written as run seg_runs + 1) of segment
    // segs.size(), the open one.
    if (s.run && s.run_idx == s.c_idx && s.run_page == page && s.run_count < 0xffffffffu) {
      ++s.run_count;
      if (kind == 'w' || (kind == 'x' && s.run_kind == 'r')) s.run_kind = kind;
      *s.c_last = {s.segs.size(), s.seg_runs + 1};
      return;
    }
    s.flush_run();
    ++st.runs;
    s.run = true;
    s.run_idx = s.c_idx;
    s.run_page = page;
    s.run_count = 1;
    s.run_kind = kind;
    *s.c_last = {s.segs.size(), s.seg_runs + 1};
  }
  uint32_t mapping_epoch(uint32_t id) { return id >= m_maps.size() ? 0 : m_maps[id]->epoch; }

  // ---- system calls
  void syscall(Proc& p, Syscall& c);
  /// The result of thread `tid`'s pending (async) call arrived in `result`.
  void complete_pending(Proc& p, uint64_t tid, std::string_view result);
  void thread_switch(Proc& p, uint64_t tid);
  void process_log(Proc& p, const fs::path& log);
  Json run_process(uint64_t pid, Proc* parent);
  void progress();
  /// Replaces every segment placeholder under `j` with its replay ops and posts.
  void resolve(Json& j);
  Stream* stream_of(const std::string& trace_rel) {
    for (auto& s : m_streams)
      if (s->trace_rel == trace_rel) return s.get();
    return nullptr;
  }
};

void Importer::resolve(Json& list) {
  // Every replay placeholder knows its stream by the enclosing thread: walk each
  // thread's (and fork child's) ops with the stream that made them.
  std::vector<std::pair<Json*, Stream*>> todo;
  for (auto& t : list) todo.emplace_back(&t["ops"], stream_of(t["_stream"].get<std::string>()));
  for (auto& t : list) t.erase("_stream");
  while (!todo.empty()) {
    auto [ops, s] = todo.back();
    todo.pop_back();
    Json out = Json::array();
    for (auto& op : *ops) {
      if (op["op"] == "region") {
        todo.emplace_back(&op["ops"], s);
      } else if (op["op"] == "fork" && op.contains("ops")) {
        todo.emplace_back(&op["ops"], stream_of(op["_stream"].get<std::string>()));
        op.erase("_stream");
      } else if (op["op"] == "fork") {
        op.erase("_stream");
      }
      if (op["op"] != "replay" || !op.contains("_seg")) {
        out.push_back(std::move(op));
        continue;
      }
      Stream::Segment& g = s->segs[op["_seg"].get<size_t>()];
      Json maps = Json::array();
      for (uint32_t id : g.maps) maps.push_back(mapping(id).name);
      std::sort(g.posts.begin(), g.posts.end());
      // Byte offsets of the split points: read the segment's lines once.
      std::vector<uint64_t> at;  // byte offset after run k, for each post
      if (!g.posts.empty()) {
        std::FILE* f = std::fopen((m_traces.parent_path() / s->trace_rel).c_str(), "rb");
        if (!f) die(s->trace_rel + ": cannot read back");
        std::fseek(f, static_cast<long>(g.start), SEEK_SET);
        uint64_t pos = g.start, run = 0;
        size_t next = 0;
        int c;
        while (next < g.posts.size() && g.posts[next].first == 0) {
          at.push_back(pos);
          ++next;
        }
        while (next < g.posts.size() && (c = std::fgetc(f)) != EOF) {
          ++pos;
          if (c != '\n') continue;
          ++run;
          while (next < g.posts.size() && g.posts[next].first == run) {
            at.push_back(pos);
            ++next;
          }
        }
        std::fclose(f);
      }
      uint64_t from_run = 0, from_byte = g.start;
      auto piece = [&](uint64_t to_run, uint64_t to_byte) {
        if (to_run > from_run)
          out.push_back({{"op", "replay"}, {"trace", s->trace_rel}, {"start", from_byte},
                         {"runs", to_run - from_run}, {"mappings", maps}});
        from_run = to_run;
        from_byte = to_byte;
      };
      for (size_t i = 0; i < g.posts.size(); ++i) {
        piece(g.posts[i].first, at[i]);
        out.push_back({{"op", "post"}, {"name", "s" + std::to_string(g.posts[i].second)}});
      }
      piece(g.runs, 0);
    }
    *ops = std::move(out);
  }
}

void Importer::progress() {
  const auto now = std::chrono::steady_clock::now();
  if (now - m_last_report < std::chrono::seconds(2)) return;
  m_last_report = now;
  m_reported = true;
  const double s = std::chrono::duration<double>(now - m_t0).count();
  std::cerr << "\rcapture-import: " << (m_progress_bytes >> 20) << " of " << (m_total_bytes >> 20)
            << " MiB read (2 passes), " << static_cast<uint64_t>(static_cast<double>(st.lines) / s / 1e6)
            << " M lines/s" << std::flush;
}

void Importer::thread_switch(Proc& p, uint64_t tid) {
  p.last_tid = tid;
  if (p.child) return;  // a forked child's threads merge into its one stream
  auto it = p.vg_thread.find(tid);
  if (it == p.vg_thread.end()) {
    int idx;
    uint64_t sem = 0;
    if (!p.pending_clones.empty()) {
      sem = p.pending_clones.front().second;
      p.pending_clones.erase(p.pending_clones.begin());
    }
    if (p.collect) {
      idx = static_cast<int>(p.vg_thread.size());
    } else {
      idx = static_cast<int>(p.threads.size());
      p.threads.push_back(&new_stream("p" + std::to_string(p.pid) + ".i" + std::to_string(p.image) + ".t" +
                                      std::to_string(idx)));
      ++st.threads;
      if (sem) await(*p.threads.back(), sem);
    }
    it = p.vg_thread.emplace(tid, idx).first;
  }
  p.cur = it->second;
}

void Importer::syscall(Proc& p, Syscall& c) {
  ++st.syscalls;
  const auto& a = c.args;
  auto arg = [&](size_t i) { return i < a.size() ? a[i] : 0; };
  const std::string& n = c.name;
  Stream* s = p.collect ? nullptr : p.threads[static_cast<size_t>(p.cur)];
  if (n == "sys_mmap" && c.ok) {
    const uint64_t flags = arg(3), fd = arg(4);
    if (!(flags & 0x20) && fd != 0xffffffffu) ++st.file_maps;
    if (flags & 0x01) ++st.shared_maps;
    map_range(p, c.result, c.result + page_up(arg(1)), prot_text(arg(2)), "m");
  } else if (n == "sys_munmap" && c.ok) {
    unmap_range(p, page_down(arg(0)), page_up(arg(0) + arg(1)));
  } else if (n == "sys_mprotect" && c.ok) {
    window_op(p, page_down(arg(0)), page_up(arg(0) + arg(1)), {{"op", "mprotect"}, {"prot", prot_text(arg(2))}});
  } else if (n == "sys_madvise" && c.ok) {
    static const std::map<uint64_t, const char*> kAdvice = {
        {4, "dontneed"}, {8, "free"}, {14, "hugepage"}, {15, "nohugepage"}, {20, "cold"}, {21, "pageout"}};
    auto it = kAdvice.find(arg(2));
    if (it == kAdvice.end()) ++st.ignored_madvise;
    else window_op(p, page_down(arg(0)), page_up(arg(0) + arg(1)), {{"op", "madvise"}, {"advice", it->second}});
  } else if (n == "sys_brk" && c.ok) {
    if (!p.heap_start) p.heap_start = p.heap_end = c.result;
    const uint64_t old_end = page_up(p.heap_end), new_end = page_up(c.result);
    if (new_end > old_end) map_range(p, old_end, new_end, "rw", "heap");
    else if (new_end < old_end) unmap_range(p, new_end, old_end);
    p.heap_end = std::max(c.result, p.heap_start);
  } else if (n == "sys_mremap" && c.ok) {
    // Emulated: the new range mapped afresh, the old one unmapped (the data's move
    // is not modelled; its pages fault again).
    ++st.mremaps;
    const uint64_t old = page_down(arg(0)), oldlen = page_up(arg(1)), newlen = page_up(arg(2));
    const uint64_t at = c.result;
    if (at == old) {
      if (newlen > oldlen) map_range(p, old + oldlen, old + newlen, "rw", "m");
      else if (newlen < oldlen) unmap_range(p, old + newlen, old + oldlen);
    } else {
      unmap_range(p, old, old + oldlen);
      map_range(p, at, at + newlen, "rw", "m");
    }
  } else if (n == "sys_clone" && c.ok && (arg(0) & 0x10000)) {
    // A thread (CLONE_THREAD; posix_spawn's CLONE_VM | CLONE_VFORK child is a
    // process): it starts after this point of its creator.
    if (p.child) {
      ++st.merged_child_threads;
    } else {
      const uint64_t sem = p.collect ? 0 : m_next_sem++;
      if (!p.collect) post(*s, sem, 1);
      p.pending_clones.emplace_back(p.cur, sem);
      ++p.live_threads;
      if (p.collect) ++p.nthreads_total;
    }
  } else if ((n == "sys_fork" || n == "sys_vfork" || n == "sys_clone" || n == "sys_clone3") && c.ok) {
    const uint64_t child = c.child ? c.child : c.result;
    if (p.collect) return;
    ++st.forks;
    ++p.live_children;
    // The child's address space is the parent's at the fork: after every change
    // another thread made to it.
    if (!p.child)
      for (const auto& [start, piece] : p.live) {
        MappingState& m = mapping(piece.id);
        if (!m.event_sem || m.event_thread == p.cur) continue;
        uint64_t& seen = s->synced[piece.id];
        if (seen != m.event_sem) {
          seen = m.event_sem;
          await(*s, m.event_sem);
        }
      }
    Json op = {{"op", "fork"}};
    if (m_logs.count(child)) {
      close_segment(*s);
      op["ops"] = run_process(child, &p);
      op["_stream"] = m_child_stream;
    }
    emit(*s, std::move(op));
  } else if (n == "sys_wait4" && c.ok) {
    // tlbsim's wait is wait4 for every child this thread forked.
    if (!p.collect && p.live_children > 0) {
      p.live_children = 0;
      emit(*s, {{"op", "wait"}});
    }
  } else if (n == "exit" && !p.child) {
    if (!p.collect) close_segment(*s);
    --p.live_threads;
    for (auto it = p.vg_thread.begin(); it != p.vg_thread.end(); ++it)
      if (it->first == p.last_tid) {
        p.vg_thread.erase(it);
        break;
      }
  } else if (n == "exit_group") {
    p.done = true;
  }
}

void Importer::complete_pending(Proc& p, uint64_t tid, std::string_view result) {
  auto it = p.pending.find(tid);
  if (it == p.pending.end()) return;
  parse_result(result, it->second);
  Syscall call = std::move(it->second);
  p.pending.erase(it);
  if (call.done) syscall(p, call);
}

void Importer::process_log(Proc& p, const fs::path& log) {
  LineReader in(log);
  const char *b, *e;
  while (in.next(b, e)) {
    ++st.lines;
    if ((st.lines & 0xfffff) == 0) {
      m_progress_bytes += in.bytes;
      in.bytes = 0;
      progress();
    }
    if (p.done) continue;
    const size_t len = static_cast<size_t>(e - b);
    // Accesses: "I  addr,size", " L addr,size", " S …", " M …".
    if (len > 3 && ((b[0] == 'I' && b[1] == ' ') || (b[0] == ' ' && b[2] == ' ' && (b[1] == 'L' || b[1] == 'S' || b[1] == 'M')))) {
      const char kind = b[0] == 'I' ? 'x' : b[1] == 'L' ? 'r' : 'w';
      const char* q = b + 2;
      while (q < e && *q == ' ') ++q;
      uint64_t addr = 0;
      for (int d; q < e && (d = hexval(*q)) >= 0; ++q) addr = addr * 16 + static_cast<uint64_t>(d);
      uint64_t size = 0;
      if (q < e && *q == ',')
        for (++q; q < e && *q >= '0' && *q <= '9'; ++q) size = size * 10 + static_cast<uint64_t>(*q - '0');
      access(p, addr, size, kind);
      continue;
    }
    const std::string_view line(b, len);
    if (line.rfind("==", 0) == 0) {
      auto c = line.find("== Command: ");
      if (c != std::string_view::npos && !m_command.count(p.pid)) m_command[p.pid] = std::string(line.substr(c + 12));
      continue;
    }
    if (line.rfind("SYSCALL[", 0) == 0) {
      const char* q = b + 8;
      const uint64_t pid = parse_num(q, e);
      ++q;
      const uint64_t tid = parse_num(q, e);
      thread_switch(p, tid);
      auto close = line.find(") ");
      if (close == std::string_view::npos) continue;
      std::string_view rest = line.substr(close + 2);
      if (rest.rfind("...", 0) == 0) {  // "... [async] --> Success(x)": an earlier call ends
        complete_pending(p, tid, rest);
        continue;
      }
      Syscall call;
      const size_t sp = rest.find_first_of(" (");
      call.name = std::string(rest.substr(0, sp));
      auto open = rest.find('(');
      auto args_end = rest.find(')', open == std::string_view::npos ? 0 : open);
      if (open != std::string_view::npos) {
        const char* ap = rest.data() + open + 1;
        const char* ae = args_end == std::string_view::npos ? rest.data() + rest.size() : rest.data() + args_end;
        const bool hex_first = call.name == "sys_clone";
        bool first = true;
        while (ap < ae) {
          while (ap < ae && (*ap == ' ' || *ap == ',')) ++ap;
          if (ap >= ae) break;
          const char* before = ap;
          call.args.push_back(parse_num(ap, ae, hex_first && first));
          first = false;
          if (ap == before) ++ap;
        }
      }
      auto child = rest.find("created child ");
      if (child != std::string_view::npos) {
        const char* cp = rest.data() + child + 14;
        call.child = parse_num(cp, rest.data() + rest.size());
      }
      (void)pid;
      parse_result(rest, call);
      if (call.name == "sys_wait4") {
        // A blocking wait4 waits where it starts (valgrind does not always log the
        // end of one interrupted by SIGCHLD); WNOHANG polls do not wait.
        if (call.args.size() > 2 && !(call.args[2] & 1)) {
          call.ok = true;
          call.result = 1;
          syscall(p, call);
        }
      } else if (call.done || call.name == "exit" || call.name == "exit_group") {
        if (!call.done && (call.name == "exit" || call.name == "exit_group")) call.ok = true;
        syscall(p, call);
      } else {
        p.pending[tid] = std::move(call);
      }
      auto sched = rest.find("SCHED[");
      if (sched != std::string_view::npos && rest.find("acquired lock", sched) != std::string_view::npos) {
        const char* sq = rest.data() + sched + 6;
        thread_switch(p, parse_num(sq, rest.data() + rest.size()));
      }
      continue;
    }
    if (line.rfind(" --> ", 0) == 0) {  // the result of the last call, on its own line
      complete_pending(p, p.last_tid, line);
      continue;
    }
    auto sched = line.find("SCHED[");
    if (sched != std::string_view::npos && line.find("acquired lock", sched) != std::string_view::npos) {
      const char* sq = b + sched + 6;
      thread_switch(p, parse_num(sq, e));
    }
  }
  m_progress_bytes += in.bytes;
}

Json Importer::run_process(uint64_t pid, Proc* parent) {
  const auto& logs = m_logs.at(pid);
  Stream* out = nullptr;
  Json result = Json::array();
  std::vector<Stream*> all_threads;  // the root's threads of every image (main first)
  std::map<uint64_t, Piece> inherited = parent ? parent->live : std::map<uint64_t, Piece>{};
  for (size_t image = 0; image < logs.size(); ++image) {
    // Pass 1: the threads it makes, and the memory it touches outside every traced
    // mapping (mapped before tracing began: executable, ld.so, stack, vdso).
    // An exec'd image starts with an empty address space (its old one goes below).
    const std::map<uint64_t, Piece> old_image = image > 0 ? inherited : std::map<uint64_t, Piece>{};
    if (image > 0) inherited.clear();
    Proc p1;
    p1.collect = true;
    p1.pid = pid;
    p1.child = parent != nullptr;
    for (const auto& [start, piece] : inherited) p1.live[start] = {piece.end, 0};
    const Stats before = st;
    process_log(p1, logs[image]);
    const uint64_t lines = st.lines;
    st = before;  // the counts are pass 2's
    st.lines = lines;
    // Pass 2.
    Proc p;
    p.pid = pid;
    p.image = image;
    p.child = parent != nullptr;
    p.nthreads_total = p1.nthreads_total;
    p.live = inherited;
    if (parent && image == 0) {  // fork: the child keeps the parent's break
      p.heap_start = parent->heap_start;
      p.heap_end = parent->heap_end;
    }
    if (!out) out = &new_stream("p" + std::to_string(pid) + (parent ? ".child" : ".t0"));
    // A new image: what the stream cached of the old one's mappings is void.
    out->c_start = 1;
    out->c_end = 0;
    out->c_in_seg = false;
    p.threads.push_back(out);
    p1.image = image;
    if (!parent && image == 0) ++st.threads;
    p.vg_thread[1] = 0;
    if (image > 0) {
      // execve: the old image's mm is torn down (exec_mmap); the new one starts empty.
      ++st.execs;
      for (const auto& [start, piece] : old_image) {
        const MappingState& m = mapping(piece.id);
        emit(*out, {{"op", "munmap"}, {"mapping", m.name}, {"offset", start - m.base}, {"length", piece.end - start}});
      }
    }
    // The untraced memory as mappings at the start, clustered (gaps of more than
    // --gap-pages pages split them) and cut around every traced range.
    std::vector<uint64_t> pages(p1.loose.begin(), p1.loose.end());
    std::sort(pages.begin(), pages.end());
    std::sort(p1.ever.begin(), p1.ever.end());
    auto traced = [&](uint64_t pg) {
      auto it = std::upper_bound(p1.ever.begin(), p1.ever.end(), std::make_pair(pg, UINT64_MAX));
      for (auto j = p1.ever.begin(); j != it; ++j)
        if (pg >= j->first && pg < j->second) return true;
      return false;
    };
    // Whether a traced range or an inherited mapping lies between pages a < b.
    auto blocked = [&](uint64_t a, uint64_t b) {
      auto l = p.live.upper_bound(a);
      if (l != p.live.end() && l->first < b) return true;
      for (const auto& [lo, hi] : p1.ever)
        if (lo < b && hi > a + kPage) return true;
      return false;
    };
    for (size_t i = 0; i < pages.size();) {
      size_t j = i;
      while (j + 1 < pages.size() && pages[j + 1] - pages[j] <= (m_gap + 1) * kPage &&
             !traced(pages[j + 1]) == !traced(pages[i]) && !blocked(pages[j], pages[j + 1]))
        ++j;
      if (!traced(pages[i])) {
        const uint32_t id = new_mapping("init", pages[i]);
        p.live[pages[i]] = {pages[j] + kPage, id};
        emit(*out, {{"op", "mmap"}, {"name", mapping(id).name}, {"size", pages[j] + kPage - pages[i]},
                    {"addr", pages[i]}, {"fixed", true}, {"prot", "rwx"}});
      } else {
        st.dropped += j - i + 1;
      }
      i = j + 1;
    }
    ++p.layout;
    process_log(p, logs[image]);
    for (Stream* t : p.threads) close_segment(*t);
    inherited = p.live;
    if (!parent) {
      if (all_threads.empty()) all_threads.push_back(out);
      for (size_t t = 1; t < p.threads.size(); ++t) all_threads.push_back(p.threads[t]);
    }
  }
  // Every image's threads (a thread of an image that exec'd ends where it was).
  for (size_t t = 0; t < all_threads.size(); ++t) {
    // Region "capture": the whole program's flushes, IPIs and time in the summary.
    Json region = {{"op", "region"}, {"name", "capture"}, {"ops", all_threads[t]->ops}};
    Json th = {{"name", "t" + std::to_string(t)}, {"ops", Json::array({std::move(region)})},
               {"_stream", all_threads[t]->trace_rel}};
    result.push_back(std::move(th));
  }
  if (parent) {
    result = out->ops;
    m_child_stream = out->trace_rel;
  }
  return result;
}

void Importer::run() {
  // vg.PID.N.log: one file per process image. A pid's images in exec order: the
  // one whose command is its parent's (it ends in execve) first.
  std::map<uint64_t, std::vector<std::pair<uint64_t, fs::path>>> files;
  for (const auto& e : fs::directory_iterator(m_dir)) {
    const std::string f = e.path().filename().string();
    unsigned long long pid = 0, n = 0;
    if (std::sscanf(f.c_str(), "vg.%llu.%llu.log", &pid, &n) == 2) {
      files[pid].emplace_back(n, e.path());
      m_total_bytes += 2 * fs::file_size(e.path());
    }
  }
  if (files.empty()) die(m_dir.string() + ": no valgrind logs (vg.PID.N.log) here");
  for (auto& [pid, v] : files) {
    // An image that ends in execve comes before the one it became.
    auto execs = [](const fs::path& p) {
      LineReader in(p);
      const char *b, *e;
      bool ex = false;
      while (in.next(b, e))
        if (e - b > 8 && std::string_view(b, static_cast<size_t>(e - b)).rfind("SYSCALL[", 0) == 0)
          ex = std::string_view(b, static_cast<size_t>(e - b)).find("sys_execve") != std::string_view::npos;
      return ex;
    };
    std::vector<std::pair<int, fs::path>> order;
    for (auto& [n, path] : v) order.emplace_back(execs(path) ? 0 : 1, path);
    std::stable_sort(order.begin(), order.end(), [](auto& x, auto& y) { return x.first < y.first; });
    for (auto& [k, path] : order) m_logs[pid].push_back(path);
  }
  // The root: the pid whose logs no fork line names as a child — the smallest.
  const uint64_t root = m_logs.begin()->first;
  Json threads = run_process(root, nullptr);
  if (m_reported) std::cerr << "\n";
  const std::string name = m_out.stem().string();
  workload = {{"name", name},
              {"description", "tools/capture of " + (m_command.count(root) ? m_command[root] : std::string("a program")) +
                                  ": each thread's recorded accesses (replay) with its memory-management system calls in place; "
                                  "threads and forked children as tasks, ordered by post/await where the run ordered them"},
              {"processes", Json::array({{{"name", "p" + std::to_string(root)}, {"threads", threads}}})}};
  for (auto& s : m_streams) {
    std::fwrite(s->buf.data(), 1, s->buf.size(), s->trace);
    std::fclose(s->trace);
    s->trace = nullptr;
  }
  resolve(workload["processes"][0]["threads"]);
  tlbsim::write_file_atomic(m_out, workload.dump(1) + "\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, out;
  uint64_t gap = 256;
  bool quiet = false;
  std::string program;  // what tools/capture ran, to notice images lost to an exec
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-o" && i + 1 < argc) out = argv[++i];
    else if (a == "--gap-pages" && i + 1 < argc) gap = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--quiet") quiet = true;
    else if (a == "--program" && i + 1 < argc) program = argv[++i];
    else if (!a.empty() && a[0] != '-' && dir.empty()) dir = a;
    else die("usage: capture-import LOGDIR -o OUT.json [--gap-pages N] [--quiet]");
  }
  if (dir.empty() || out.empty()) die("usage: capture-import LOGDIR -o OUT.json [--gap-pages N] [--quiet]");
  const auto t0 = std::chrono::steady_clock::now();
  Importer imp(dir, fs::absolute(out), gap);
  imp.run();
  if (!program.empty()) {
    // Valgrind names a log by pid and a per-image counter that restarts at exec:
    // a process that execs more than once keeps only its first and last images.
    const std::string cmd = imp.root_command();
    const std::string want = fs::path(program).filename().string();
    const std::string got = fs::path(cmd.substr(0, cmd.find(' '))).filename().string();
    if (!got.empty() && got != want)
      std::cerr << "capture-import: warning: " << program << " exec'd into " << got
                << "; what ran before that exec is not in the capture (valgrind reuses the "
                   "log of a process that execs); capture the final program directly\n";
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Stats& st = imp.st;
  if (!quiet)
    std::cerr << "capture-import: " << st.lines << " log lines (2 passes) in " << s << " s ("
              << static_cast<uint64_t>(static_cast<double>(st.lines) / s) << " lines/s): "
              << st.accesses << " accesses → " << st.runs << " page runs; " << st.syscalls
              << " system calls; " << st.threads << " threads, " << st.forks << " forks, " << st.execs
              << " execs, " << st.edges << " ordering edges; " << st.dropped
              << " page accesses dropped (outside the user address space or any mapping); "
              << st.file_maps << " file mappings replayed as anonymous, " << st.shared_maps
              << " shared as private, " << st.mremaps << " mremaps emulated, " << st.ignored_madvise
              << " madvise advices without effect here, " << st.merged_child_threads
              << " threads of forked children merged into them\n";
  return 0;
}
