#include "tools/tlbsim/compare.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include "base/error.h"
#include "base/file_util.h"
#include "base/stats.h"
#include "tools/tlbsim/report.h"

namespace tlbsim {

namespace fs = std::filesystem;

namespace {

struct Run {
  std::string label;
  std::map<std::string, double> metrics;
};

/// `cpu[N]` path segments become `cpu[*]` (sums over CPUs) unless per_cpu.
std::string group_cpus(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size();) {
    if (path.compare(i, 4, "cpu[") == 0 && (i == 0 || path[i - 1] == '.')) {
      size_t j = i + 4;
      while (j < path.size() && std::isdigit(static_cast<unsigned char>(path[j]))) ++j;
      if (j > i + 4 && j < path.size() && path[j] == ']') {
        out += "cpu[*]";
        i = j + 1;
        continue;
      }
    }
    out += path[i++];
  }
  return out;
}

/// The time twin of a cycles metric: ".cycles" → ".time_ns", "_cycles" → "_ns".
std::string ns_path(const std::string& path) {
  const std::string c = "cycles";
  if (path.size() >= c.size() && path.compare(path.size() - c.size(), c.size(), c) == 0) {
    const std::string stem = path.substr(0, path.size() - c.size());
    return stem + (stem.empty() || stem.back() == '.' ? "time_ns" : "ns");
  }
  return path + "_ns";
}

Run load_run(const std::string& arg, bool per_cpu) {
  fs::path p = arg;
  if (fs::is_directory(p)) p /= "stats.json";
  if (!fs::exists(p))
    throw InputError("", "no stats.json here (give a result directory or a stats.json file)", arg);
  Json j = read_json_file(p);
  if (!j.is_object() || !j.contains("stats") || !j.contains("meta") || !j["meta"].is_object())
    throw InputError("", "not a tlbsim stats.json (no \"meta\"/\"stats\")", p.string());
  Run r;
  r.label = fs::path(arg).filename().string();
  if (r.label.empty() || r.label == "stats.json") r.label = fs::path(arg).parent_path().filename().string();
  // The machine's clock turns cycles into time (x86 and arm64 presets differ).
  double ghz = 0;
  if (const Json* m = j.contains("config") && j["config"].is_object() && j["config"].contains("machine")
                          ? &j["config"]["machine"]
                          : nullptr;
      m && m->is_object() && m->contains("freq_ghz") && (*m)["freq_ghz"].is_number())
    ghz = (*m)["freq_ghz"].get<double>();
  std::map<std::string, double> dist_count, dist_weighted;
  for_each_stat(j["stats"], [&](const std::string& path, const Json& n) {
    {
      const Json& v = n["value"];
      const std::string key = per_cpu ? path : group_cpus(path);
      if (v.is_number()) {
        r.metrics[key] += v.get<double>();
        if (ghz > 0 && n["unit"] == "cycles")
          r.metrics[ns_path(key)] += std::round(v.get<double>() / ghz * 10) / 10;  // 0.1 ns
      } else if (v.is_object() && v.contains("mean") && v.contains("count") &&
                 v["mean"].is_number() && v["count"].is_number()) {
        // Distributions over CPUs: counts add, means weighted by their counts.
        const double c = v["count"].get<double>();
        dist_count[key] += c;
        dist_weighted[key] += c * v["mean"].get<double>();
      }
    }
  });
  for (const auto& [k, c] : dist_count) {
    r.metrics[k + ".count"] = c;
    r.metrics[k + ".mean"] = c > 0 ? dist_weighted[k] / c : 0;
  }
  const Json& sc = j["meta"].contains("simulated_cycles") ? j["meta"]["simulated_cycles"] : Json(0);
  r.metrics["meta.simulated_cycles"] = sc.is_number() ? sc.get<double>() : 0;
  if (ghz > 0)
    r.metrics["meta.simulated_ns"] = std::round(r.metrics["meta.simulated_cycles"] / ghz * 10) / 10;
  return r;
}

std::string ratio_text(double a, double b) {
  if (a == 0) return b == 0 ? "=" : "new";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fx", b / a);
  return buf;
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string md_cell(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '|' ? std::string("\\|") : std::string(1, c);
  return o;
}

/// Does `k` differ between the runs by more than `threshold` (a fraction of the
/// first run's value; 0: any difference)?
bool differs(const std::vector<Run>& runs, const std::string& k, double threshold) {
  auto first = runs[0].metrics.find(k);
  for (const auto& r : runs) {
    auto it = r.metrics.find(k);
    if ((it == r.metrics.end()) != (first == runs[0].metrics.end())) return true;
    if (it == r.metrics.end() || it->second == first->second) continue;
    if (threshold <= 0 || first->second == 0) return true;
    if (std::fabs(it->second / first->second - 1) > threshold) return true;
  }
  return false;
}

/// A headline metric, or the time twin of a headline cycles metric.
bool headline_or_time(const std::string& k) {
  if (headline_metric(k)) return true;
  if (k.size() > 8 && k.compare(k.size() - 8, 8, ".time_ns") == 0)
    return headline_metric(k.substr(0, k.size() - 7) + "cycles");
  if (k.size() > 3 && k.compare(k.size() - 2, 2, "ns") == 0) {
    const std::string stem = k.substr(0, k.size() - 2);
    return headline_metric(stem + "cycles") ||
           (stem.back() == '_' && headline_metric(stem.substr(0, stem.size() - 1)));
  }
  return false;
}

}  // namespace

int run_compare(const CompareOptions& o) {
  if (o.runs.size() < 2) throw InputError("", "compare needs at least two runs", "tlbsim compare");
  if (o.threshold_percent < 0)
    throw InputError("", "expected a percentage of at least 0, got " + format_number(o.threshold_percent),
                     "--threshold");
  std::vector<Run> runs;
  for (const auto& a : o.runs) runs.push_back(load_run(a, o.per_cpu));
  std::set<std::string> keys;
  for (const auto& r : runs)
    for (const auto& [k, v] : r.metrics) keys.insert(k);
  const double threshold = o.threshold_percent / 100;
  std::vector<std::string> rows;
  for (const auto& k : keys) {
    if (!o.filter.empty() && k.find(o.filter) == std::string::npos) continue;
    if (!o.all && o.filter.empty() && !headline_or_time(k)) continue;
    if ((o.all || threshold > 0) && !differs(runs, k, threshold)) continue;
    rows.push_back(k);
  }
  auto value = [&](const Run& r, const std::string& k) -> std::string {
    auto it = r.metrics.find(k);
    return it == r.metrics.end() ? "-" : format_number(it->second);
  };
  auto ratio = [&](const Run& r, const std::string& k) -> std::string {
    const auto& ma = runs[0].metrics;
    auto a = ma.find(k);
    auto b = r.metrics.find(k);
    if (a == ma.end() || b == r.metrics.end()) return "-";
    return ratio_text(a->second, b->second);
  };
  // Why the table is empty, said in words (on stderr for CSV, which stays a table).
  std::string empty_why;
  if (rows.empty()) {
    empty_why = o.all || threshold > 0
                    ? "no metric differs between the runs" +
                          (threshold > 0 ? " by more than " + format_number(o.threshold_percent) + " %"
                                         : std::string()) +
                          (o.filter.empty() ? "" : " among those matching \"" + o.filter + "\"")
                    : "no metric matches \"" + o.filter + "\"";
  }
  if (o.format == "csv") {
    std::cout << "metric";
    for (size_t i = 0; i < runs.size(); ++i) std::cout << "," << csv_field(runs[i].label);
    for (size_t i = 1; i < runs.size(); ++i)
      std::cout << "," << csv_field(runs[i].label + "/" + runs[0].label);
    std::cout << "\n";
    for (const auto& k : rows) {
      std::cout << csv_field(k);
      for (const auto& r : runs) std::cout << "," << value(r, k);
      for (size_t i = 1; i < runs.size(); ++i) {
        auto a = runs[0].metrics.find(k), b = runs[i].metrics.find(k);
        std::cout << ",";
        if (a != runs[0].metrics.end() && b != runs[i].metrics.end() && a->second != 0)
          std::cout << format_number(b->second / a->second);
      }
      std::cout << "\n";
    }
    if (!empty_why.empty()) std::cerr << "tlbsim compare: " << empty_why << "\n";
    return 0;
  }
  if (!empty_why.empty()) {
    std::cout << empty_why << "\n";
    return 0;
  }
  if (o.format == "markdown") {
    std::cout << "| metric |";
    for (const auto& r : runs) std::cout << " " << md_cell(r.label) << " |";
    for (size_t i = 1; i < runs.size(); ++i)
      std::cout << " " << md_cell(runs[i].label) << " / " << md_cell(runs[0].label) << " |";
    std::cout << "\n|---|";
    for (size_t i = 0; i < 2 * runs.size() - 1; ++i) std::cout << "---:|";
    std::cout << "\n";
    for (const auto& k : rows) {
      std::cout << "| `" << k << "` |";
      for (const auto& r : runs) std::cout << " " << value(r, k) << " |";
      for (size_t i = 1; i < runs.size(); ++i) std::cout << " " << ratio(runs[i], k) << " |";
      std::cout << "\n";
    }
    return 0;
  }
  // Text: labels up to 24 bytes head their columns; longer ones are listed in full
  // in a legend and the columns are headed [1], [2], ...
  constexpr size_t kMaxHeader = 24;
  bool legend = false;
  for (const auto& r : runs) legend |= r.label.size() > kMaxHeader;
  std::vector<std::string> heads;
  for (size_t i = 0; i < runs.size(); ++i)
    heads.push_back(legend ? "[" + std::to_string(i + 1) + "]" : runs[i].label);
  if (legend)
    for (size_t i = 0; i < runs.size(); ++i) std::cout << heads[i] << " " << runs[i].label << "\n";
  size_t w = 6, cw = 12;
  for (const auto& k : rows) w = std::max(w, k.size());
  for (const auto& h : heads) cw = std::max(cw, h.size());
  const int c = static_cast<int>(cw);
  std::printf("%-*s", static_cast<int>(w), "metric");
  for (const auto& h : heads) std::printf(" %*s", c, h.c_str());
  for (size_t i = 1; i < runs.size(); ++i)
    std::printf(" %10s", (legend ? heads[i] + "/" + heads[0] : "ratio" + std::to_string(i)).c_str());
  std::printf("\n");
  for (const auto& k : rows) {
    std::printf("%-*s", static_cast<int>(w), k.c_str());
    for (const auto& r : runs) std::printf(" %*s", c, value(r, k).c_str());
    for (size_t i = 1; i < runs.size(); ++i) std::printf(" %10s", ratio(runs[i], k).c_str());
    std::printf("\n");
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace tlbsim
