#include "base/trace_writer.h"

#include <cstdio>
#include <cstring>

#include "base/file_util.h"
#include "base/log.h"

namespace tlbsim {

namespace {
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}
}  // namespace

TraceWriter::TraceWriter(double ghz, std::string process, bool buffer)
    : m_us_per_cycle(1.0 / (ghz * 1000.0)), m_buffer(buffer) {
  if (!m_buffer) return;
  m_events.push_back("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"" +
                     escape(process) + "\"}}");
}

TraceWriter::~TraceWriter() = default;

void TraceWriter::log_categories(const std::vector<std::string>& categories) {
  m_loggers.clear();
  for (const auto& c : categories) m_loggers.emplace_back(c, log::get(c));
}

void TraceWriter::log_event(unsigned tid, const char* category, const std::string& name,
                            uint64_t start, const uint64_t* dur, const std::string& args) const {
  for (const auto& [cat, logger] : m_loggers) {
    if (std::strcmp(cat.c_str(), category) != 0) continue;
    if (dur)
      logger->debug("cpu{} {} cycles (+{}): {}{}{}", tid, start, *dur, name, args.empty() ? "" : " ",
                    args);
    else
      logger->debug("cpu{} {} cycles: {}{}{}", tid, start, name, args.empty() ? "" : " ", args);
    return;
  }
}

std::string TraceWriter::ts(uint64_t cycles) const {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4f", static_cast<double>(cycles) * m_us_per_cycle);
  return buf;
}

void TraceWriter::thread_name(unsigned tid, const std::string& name) {
  m_events.push_back("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" +
                     std::to_string(tid) + ",\"args\":{\"name\":\"" + escape(name) + "\"}}");
  m_events.push_back("{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":" +
                     std::to_string(tid) + ",\"args\":{\"sort_index\":" + std::to_string(tid) + "}}");
}

void TraceWriter::complete(unsigned tid, const char* category, const std::string& name,
                           uint64_t start, uint64_t dur, const std::string& args) {
  if (!m_loggers.empty()) log_event(tid, category, name, start, &dur, args);
  if (!m_buffer) return;
  m_events.push_back("{\"name\":\"" + escape(name) + "\",\"cat\":\"" + category +
                     "\",\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(tid) + ",\"ts\":" +
                     ts(start) + ",\"dur\":" + ts(dur) +
                     (args.empty() ? "" : ",\"args\":" + args) + "}");
}

void TraceWriter::instant(unsigned tid, const char* category, const std::string& name,
                          uint64_t at, const std::string& args) {
  if (!m_loggers.empty()) log_event(tid, category, name, at, nullptr, args);
  if (!m_buffer) return;
  m_events.push_back("{\"name\":\"" + escape(name) + "\",\"cat\":\"" + category +
                     "\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":" + std::to_string(tid) +
                     ",\"ts\":" + ts(at) + (args.empty() ? "" : ",\"args\":" + args) + "}");
}

void TraceWriter::flow(uint64_t id, unsigned from_tid, uint64_t from, unsigned to_tid, uint64_t to,
                       const char* name) {
  if (!m_buffer) return;
  const std::string common = std::string("\"name\":\"") + name + "\",\"cat\":\"ipi\",\"pid\":1,\"id\":" +
                             std::to_string(id);
  m_events.push_back("{" + common + ",\"ph\":\"s\",\"tid\":" + std::to_string(from_tid) +
                     ",\"ts\":" + ts(from) + "}");
  m_events.push_back("{" + common + ",\"ph\":\"f\",\"bp\":\"e\",\"tid\":" + std::to_string(to_tid) +
                     ",\"ts\":" + ts(to) + "}");
}

void TraceWriter::counter(const char* name, uint64_t at, double value) {
  if (!m_buffer) return;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  m_events.push_back(std::string("{\"name\":\"") + name + "\",\"ph\":\"C\",\"pid\":1,\"ts\":" +
                     ts(at) + ",\"args\":{\"value\":" + buf + "}}");
}

void TraceWriter::write(const std::string& path) const {
  std::string out = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
  for (size_t i = 0; i < m_events.size(); ++i) {
    out += m_events[i];
    out += i + 1 < m_events.size() ? ",\n" : "\n";
  }
  out += "]}\n";
  write_file_atomic(path, out);
}

}  // namespace tlbsim
