#include "tools/tlbsim/compare.h"

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

Run load_run(const std::string& arg) {
  fs::path p = arg;
  if (fs::is_directory(p)) p /= "stats.json";
  if (!fs::exists(p))
    throw InputError("", "no stats.json here (give a result directory or a stats.json file)", arg);
  Json j = read_json_file(p);
  if (!j.contains("stats") || !j.contains("meta"))
    throw InputError("", "not a tlbsim stats.json (no \"meta\"/\"stats\")", p.string());
  Run r;
  r.label = fs::path(arg).filename().string();
  if (r.label.empty() || r.label == "stats.json") r.label = fs::path(arg).parent_path().filename().string();
  std::function<void(const Json&, const std::string&)> walk = [&](const Json& n, const std::string& path) {
    if (n.is_object() && n.contains("value") && n.contains("unit")) {
      const Json& v = n["value"];
      if (v.is_number()) r.metrics[path] = v.get<double>();
      else if (v.is_object() && v.contains("mean")) {
        r.metrics[path + ".count"] = v["count"].get<double>();
        r.metrics[path + ".mean"] = v["mean"].get<double>();
      }
      return;
    }
    if (!n.is_object()) return;
    for (auto it = n.begin(); it != n.end(); ++it)
      walk(it.value(), path.empty() ? it.key() : path + "." + it.key());
  };
  walk(j["stats"], "");
  r.metrics["meta.simulated_cycles"] = j["meta"].value("simulated_cycles", 0.0);
  return r;
}

std::string ratio_text(double a, double b) {
  if (a == 0) return b == 0 ? "=" : "new";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fx", b / a);
  return buf;
}

}  // namespace

int run_compare(const CompareOptions& o) {
  if (o.runs.size() < 2) throw InputError("", "compare needs at least two runs", "tlbsim compare");
  std::vector<Run> runs;
  for (const auto& a : o.runs) runs.push_back(load_run(a));
  std::set<std::string> keys;
  for (const auto& r : runs)
    for (const auto& [k, v] : r.metrics) keys.insert(k);
  std::vector<std::string> rows;
  for (const auto& k : keys) {
    if (!o.filter.empty() && k.find(o.filter) == std::string::npos) continue;
    if (o.all) {
      bool differs = false;
      for (const auto& r : runs) {
        auto it = r.metrics.find(k);
        auto first = runs[0].metrics.find(k);
        if ((it == r.metrics.end()) != (first == runs[0].metrics.end()) ||
            (it != r.metrics.end() && it->second != first->second))
          differs = true;
      }
      if (!differs) continue;
    } else if (!headline_metric(k) && o.filter.empty()) {
      continue;
    }
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
  if (o.format == "csv") {
    std::cout << "metric";
    for (size_t i = 0; i < runs.size(); ++i) std::cout << "," << runs[i].label;
    for (size_t i = 1; i < runs.size(); ++i) std::cout << "," << runs[i].label << "/" << runs[0].label;
    std::cout << "\n";
    for (const auto& k : rows) {
      std::cout << k;
      for (const auto& r : runs) std::cout << "," << value(r, k);
      for (size_t i = 1; i < runs.size(); ++i) {
        auto a = runs[0].metrics.find(k), b = runs[i].metrics.find(k);
        std::cout << ",";
        if (a != runs[0].metrics.end() && b != runs[i].metrics.end() && a->second != 0)
          std::cout << format_number(b->second / a->second);
      }
      std::cout << "\n";
    }
    return 0;
  }
  if (o.format == "markdown") {
    std::cout << "| metric |";
    for (const auto& r : runs) std::cout << " " << r.label << " |";
    for (size_t i = 1; i < runs.size(); ++i) std::cout << " " << runs[i].label << " / " << runs[0].label << " |";
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
  size_t w = 6, cw = 12;
  for (const auto& k : rows) w = std::max(w, k.size());
  for (const auto& r : runs) cw = std::max(cw, std::min<size_t>(40, r.label.size()));
  const int c = static_cast<int>(cw);
  std::printf("%-*s", static_cast<int>(w), "metric");
  for (const auto& r : runs) std::printf(" %*s", c, r.label.substr(0, cw).c_str());
  for (size_t i = 1; i < runs.size(); ++i) std::printf(" %10s", ("ratio" + std::to_string(i)).c_str());
  std::printf("\n");
  for (const auto& k : rows) {
    std::printf("%-*s", static_cast<int>(w), k.c_str());
    for (const auto& r : runs) std::printf(" %*s", c, value(r, k).c_str());
    for (size_t i = 1; i < runs.size(); ++i) std::printf(" %10s", ratio(runs[i], k).c_str());
    std::printf("\n");
  }
  return 0;
}

}  // namespace tlbsim
