#include "tools/tlbsim/host_measurements.h"

#include <openssl/evp.h>

#include <fstream>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/file_util.h"

namespace tlbsim {

namespace fs = std::filesystem;

const std::vector<std::string>& host_folio_ops() {
  static const std::vector<std::string> k = {
      "populate",  "write_nofault",     "munmap",    "dontneed",       "fork",
      "child_exit", "cow_reuse",        "munmap_after_fork", "cow_write", "mprotect_ro_4k",
      "mprotect_rw_4k", "dontneed_4k"};
  return k;
}

const std::set<std::string>& calibration_folios() {
  static const std::set<std::string> k = {"4K", "64K", "2M"};
  return k;
}
const std::set<std::string>& calibration_ops() {
  static const std::set<std::string> k = {"populate", "munmap", "fork"};
  return k;
}

bool in_calibration_subset(const std::string& key) {
  if (key.rfind("shootdown/", 0) == 0) {
    const size_t a = key.find('/', 10), b = key.find('/', a + 1);
    return std::stoul(key.substr(a + 1, b - a - 1)) == kCalibrationShootdownPages;
  }
  const size_t a = key.find('/'), b = key.rfind('/');
  return calibration_folios().count(key.substr(a + 1, b - a - 1)) &&
         calibration_ops().count(key.substr(b + 1));
}

double measured_ns(const HostMeasurements& m, const std::string& key) {
  if (key.rfind("shootdown/", 0) == 0) {
    const HostShootdown* s = m.find_shootdown(key.substr(10));
    return s ? s->median_ns : -1;
  }
  const size_t a = key.find('/'), b = key.rfind('/');
  const HostFolio* f = m.folio(key.substr(a + 1, b - a - 1));
  if (!f) return -1;
  auto it = f->ops.find(key.substr(b + 1));
  return it == f->ops.end() ? -1 : it->second.median_ns / static_cast<double>(it->second.calls);
}

const HostFolio* HostMeasurements::folio(const std::string& name) const {
  for (const auto& f : folios)
    if (f.name == name) return &f;
  return nullptr;
}

const HostShootdown* HostMeasurements::find_shootdown(const std::string& key) const {
  for (const auto& s : shootdown)
    if (s.key() == key) return &s;
  return nullptr;
}

std::string sha256_of_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 15];
  }
  return hex;
}

namespace {

/// Typed access to the document with pointers in every message.
struct Reader {
  std::string file;
  const Json& at(const Json& obj, const std::string& ptr, const std::string& key,
                 const char* what) const {
    if (!obj.is_object() || !obj.contains(key))
      throw InputError(ptr + "/" + json_pointer_escape(key),
                       std::string("missing ") + what + " (not a complete tlbsim-hostbench file?)",
                       file);
    return obj.at(key);
  }
  double number(const Json& obj, const std::string& ptr, const std::string& key) const {
    const Json& v = at(obj, ptr, key, "number");
    if (!v.is_number())
      throw InputError(ptr + "/" + key, "expected a number, got " + v.dump().substr(0, 40), file);
    return v.get<double>();
  }
  std::string string(const Json& obj, const std::string& ptr, const std::string& key) const {
    const Json& v = at(obj, ptr, key, "string");
    if (!v.is_string())
      throw InputError(ptr + "/" + key, "expected a string, got " + v.dump().substr(0, 40), file);
    return v.get<std::string>();
  }
  std::map<std::string, int64_t> counters(const Json& obj, const std::string& ptr,
                                          const std::string& key) const {
    std::map<std::string, int64_t> m;
    auto it = obj.find(key);
    if (it == obj.end()) return m;
    if (!it->is_object())
      throw InputError(ptr + "/" + key, "expected an object of counters", file);
    for (auto c = it->begin(); c != it->end(); ++c) {
      if (!c->is_number_integer())
        throw InputError(ptr + "/" + key + "/" + json_pointer_escape(c.key()),
                         "expected an integer counter delta", file);
      m[c.key()] = c->get<int64_t>();
    }
    return m;
  }
};

}  // namespace

HostMeasurements load_host_measurements(const fs::path& file) {
  const std::string f = file.string();
  Json doc;
  try {
    doc = read_json_file(file);
  } catch (const InputError&) {
    throw;
  }
  Reader r{f};
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != "tlbsim-hostbench")
    throw InputError("/format", "expected \"tlbsim-hostbench\" (a measurement file written by "
                                "tools/hostbench), got " +
                                    (doc.is_object() && doc.contains("format")
                                         ? doc["format"].dump().substr(0, 40)
                                         : std::string("no format field")),
                     f);
  if (r.number(doc, "", "version") != 1)
    throw InputError("/version", "expected version 1 of the hostbench format, got " +
                                     doc["version"].dump(), f);
  HostMeasurements m;
  m.file = file;
  m.sha256 = sha256_of_file(file);
  m.machine = r.at(doc, "", "machine", "machine description");
  if (!m.machine.is_object()) throw InputError("/machine", "expected an object", f);
  if (doc.contains("created") && doc["created"].is_string()) m.created = doc["created"];
  const Json& params = r.at(doc, "", "params", "run parameters");
  m.size_bytes = static_cast<uint64_t>(r.number(params, "/params", "size_bytes"));
  if (m.size_bytes < (2u << 20) || m.size_bytes % (2u << 20))
    throw InputError("/params/size_bytes", "expected a multiple of 2 MiB, got " +
                                                std::to_string(m.size_bytes), f);
  const Json& folio = r.at(doc, "", "folio", "folio family");
  if (!folio.is_object()) throw InputError("/folio", "expected an object of folio configurations", f);
  static const std::set<std::string> kFolios = {"4K",   "16K", "32K", "64K", "128K",
                                                "256K", "512K", "1M", "2M",  "2M-pte"};
  for (auto it = folio.begin(); it != folio.end(); ++it) {
    const std::string ptr = "/folio/" + json_pointer_escape(it.key());
    if (!kFolios.count(it.key()))
      throw InputError(ptr, "unknown folio configuration \"" + it.key() +
                                "\"; expected 4K, 16K … 1M, 2M or 2M-pte", f);
    HostFolio hf;
    hf.name = it.key();
    hf.folio_bytes = static_cast<uint64_t>(r.number(*it, ptr, "folio_bytes"));
    const Json& pm = r.at(*it, ptr, "pmd_mapped", "pmd_mapped flag");
    hf.pmd_mapped = pm.is_boolean() && pm.get<bool>();
    if (auto c = it->find("check"); c != it->end() && c->is_object() && c->contains("ok"))
      hf.check_ok = (*c)["ok"].is_boolean() && (*c)["ok"].get<bool>();
    const Json& ops = r.at(*it, ptr, "ops", "ops");
    if (!ops.is_object()) throw InputError(ptr + "/ops", "expected an object of ops", f);
    for (auto o = ops.begin(); o != ops.end(); ++o) {
      const std::string optr = ptr + "/ops/" + json_pointer_escape(o.key());
      HostOp op;
      op.median_ns = r.number(*o, optr, "median_ns");
      op.min_ns = r.number(*o, optr, "min_ns");
      if (!(op.median_ns > 0))
        throw InputError(optr + "/median_ns", "expected a positive time", f);
      if (o->contains("calls")) op.calls = static_cast<uint64_t>(r.number(*o, optr, "calls"));
      if (o->contains("minflt_median")) op.minflt = r.number(*o, optr, "minflt_median");
      op.vmstat = r.counters(*o, optr, "vmstat");
      op.mthp = r.counters(*o, optr, "mthp");
      hf.ops[o.key()] = std::move(op);
    }
    m.folios.push_back(std::move(hf));
  }
  if (auto mhz = m.machine.find("mhz"); mhz != m.machine.end() && mhz->is_number())
    m.host_mhz = mhz->get<double>();
  if (auto pr = doc.find("primitives"); pr != doc.end()) {
    if (!pr->is_object()) throw InputError("/primitives", "expected an object", f);
    HostPrimitives& p = m.primitives;
    p.present = true;
    auto median = [&](const Json& obj, const std::string& ptr, const std::string& key) -> double {
      auto it = obj.find(key);
      if (it == obj.end()) return 0;
      if (it->is_number()) return it->get<double>();
      return r.number(*it, ptr + "/" + key, "median");
    };
    if (auto c = pr->find("chase_ns"); c != pr->end()) {
      if (!c->is_object()) throw InputError("/primitives/chase_ns", "expected an object by buffer size", f);
      for (auto it = c->begin(); it != c->end(); ++it)
        p.chase_ns[it.key()] = median(*c, "/primitives/chase_ns", it.key());
    }
    p.chase_4k_pages_ns = median(*pr, "/primitives", "chase_4k_pages_ns");
    p.independent_read_ns = median(*pr, "/primitives", "independent_read_ns");
    p.seq_read_line_ns = median(*pr, "/primitives", "seq_read_line_ns");
    p.page_stride_write_ns = median(*pr, "/primitives", "page_stride_write_ns");
    p.clear_page_cold_ns = median(*pr, "/primitives", "clear_page_cold_ns");
    p.copy_page_cold_ns = median(*pr, "/primitives", "copy_page_cold_ns");
    p.syscall_ns = median(*pr, "/primitives", "syscall_ns");
    p.pagefault_ns = median(*pr, "/primitives", "pagefault_ns");
    p.atomic_ns = median(*pr, "/primitives", "atomic_ns");
    p.xchg_ns = median(*pr, "/primitives", "xchg_ns");
  }
  if (auto sd = doc.find("shootdown"); sd != doc.end()) {
    if (!sd->is_array()) throw InputError("/shootdown", "expected an array of points", f);
    for (size_t i = 0; i < sd->size(); ++i) {
      const Json& p = (*sd)[i];
      const std::string ptr = "/shootdown/" + std::to_string(i);
      HostShootdown s;
      s.op = r.string(p, ptr, "op");
      s.pages = static_cast<unsigned>(r.number(p, ptr, "pages"));
      s.remote = r.string(p, ptr, "remote");
      s.layout = r.string(p, ptr, "layout");
      s.iterations = static_cast<unsigned>(r.number(p, ptr, "iterations"));
      const Json& t = r.at(p, ptr, "per_call_ns", "per-call times");
      s.median_ns = r.number(t, ptr + "/per_call_ns", "median");
      s.min_ns = r.number(t, ptr + "/per_call_ns", "min");
      s.ipis_per_call = r.number(p, ptr, "ipis_per_call");
      if (s.remote != "running" && s.remote != "lazy")
        throw InputError(ptr + "/remote", "expected running or lazy, got " + s.remote, f);
      if (s.layout != "shared_table" && s.layout != "alone" && s.layout != "split")
        throw InputError(ptr + "/layout", "expected shared_table, alone or split, got " + s.layout, f);
      if (s.op != "munmap" && s.op != "mprotect_ro" && s.op != "mprotect_rw" && s.op != "dontneed")
        throw InputError(ptr + "/op", "expected munmap, mprotect_ro, mprotect_rw or dontneed, got " +
                                          s.op, f);
      m.shootdown.push_back(std::move(s));
    }
  }
  return m;
}

}  // namespace tlbsim
