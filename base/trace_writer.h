// A timeline in the Chrome/Perfetto JSON trace format ("traceEvents"), loadable in
// ui.perfetto.dev or chrome://tracing: one track per CPU, complete events for kernel
// operations, IPI handlers, TLBI broadcasts and DSB waits, flow arrows from an IPI's
// sender to its handler. Events are buffered in memory and written atomically.
//
// Timestamps are simulated cycles converted to microseconds with the core clock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tlbsim {

class TraceWriter {
 public:
  /// `ghz` converts cycles to time; `process` names the trace's process track.
  TraceWriter(double ghz, std::string process);

  /// Names the track of `tid` (e.g. "cpu3").
  void thread_name(unsigned tid, const std::string& name);
  /// A complete event [start, start + dur) on track `tid`.
  void complete(unsigned tid, const char* category, const std::string& name, uint64_t start_cycles,
                uint64_t dur_cycles, const std::string& args_json = "");
  /// An instant event.
  void instant(unsigned tid, const char* category, const std::string& name, uint64_t at_cycles,
               const std::string& args_json = "");
  /// A flow arrow from (from_tid, at) to (to_tid, at2) with id `id`.
  void flow(uint64_t id, unsigned from_tid, uint64_t from_cycles, unsigned to_tid,
            uint64_t to_cycles, const char* name);
  /// A counter track sample.
  void counter(const char* name, uint64_t at_cycles, double value);

  size_t size() const { return m_events.size(); }
  /// Writes {"traceEvents": [...], "displayTimeUnit": "ns"} atomically.
  void write(const std::string& path) const;

 private:
  std::string ts(uint64_t cycles) const;
  double m_us_per_cycle;
  std::vector<std::string> m_events;
};

}  // namespace tlbsim
