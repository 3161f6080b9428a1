// A timeline in the Chrome/Perfetto JSON trace format ("traceEvents"), loadable in
// ui.perfetto.dev or chrome://tracing: one track per CPU, complete events for kernel
// operations, IPI handlers, TLBI broadcasts and DSB waits, flow arrows from an IPI's
// sender to its handler. Events are buffered in memory and written atomically.
//
// Timestamps are simulated cycles converted to microseconds with the core clock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace tlbsim {

class TraceWriter {
 public:
  /// `ghz` converts cycles to time; `process` names the trace's process track.
  /// Without `buffer` nothing is kept for write(): the events only go to the debug
  /// log (tlbsim run --debug without --trace).
  TraceWriter(double ghz, std::string process, bool buffer = true);
  ~TraceWriter();

  /// Also prints every complete and instant event of these categories (the
  /// --debug categories of base/log.h) as a debug line of that category's logger.
  void log_categories(const std::vector<std::string>& categories);

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
  void log_event(unsigned tid, const char* category, const std::string& name, uint64_t start,
                 const uint64_t* dur, const std::string& args) const;
  double m_us_per_cycle;
  bool m_buffer;
  std::vector<std::string> m_events;
  std::vector<std::pair<std::string, std::shared_ptr<spdlog::logger>>> m_loggers;
};

}  // namespace tlbsim
