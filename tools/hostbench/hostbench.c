// hostbench: the command line, machine description and JSON output. The families
// are in primitives.c, folio.c and shootdown.c; sysfs handling and counters in sys.c.
#include "hostbench.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

params_t g_params;

static const char k_usage[] =
    "usage: hostbench [--size BYTES] [--repeats N] [--iterations N] [--families primitives,folio,shootdown]\n"
    "                 [--folios 4K,16K,32K,64K,128K,256K,512K,1M,2M,2M-pte] [--out FILE] [--quick] [--help]\n"
    "\n"
    "Measures the running kernel's memory-management costs for tlbsim calibration (run as root;\n"
    "it changes /sys/kernel/mm/transparent_hugepage settings and restores them on exit).\n"
    "  --size BYTES       anonymous mapping per scenario, a multiple of 2M (K/M/G suffixes; default 1G)\n"
    "  --repeats N        samples per folio op (default 5)\n"
    "  --iterations N     calls per shootdown point (default 200)\n"
    "  --families LIST    any of primitives, folio, shootdown (default all three)\n"
    "  --folios LIST      folio configurations (default all ten)\n"
    "  --out FILE         JSON output (written to FILE.tmp, then renamed; default stdout)\n"
    "  --quick            smoke run: --size 64M --repeats 2 --iterations 20 (explicit options win),\n"
    "                     shorter primitives loops\n"
    "See docs/hostbench.md.\n";

static _Noreturn void bad_arg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad_arg(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "hostbench: %s\n", msg);
  exit(2);
}

static bool parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno || *s == '-') return false;
  uint64_t mul = 1;
  if (*end) {
    switch (*end) {
      case 'k': case 'K': mul = 1ULL << 10; break;
      case 'm': case 'M': mul = 1ULL << 20; break;
      case 'g': case 'G': mul = 1ULL << 30; break;
      default: return false;
    }
    end++;
    if (*end == 'i' && end[1] == 'B') end += 2;
    else if (*end == 'B') end++;
    if (*end) return false;
  }
  if (v > UINT64_MAX / mul) return false;
  *out = v * mul;
  return true;
}

static bool parse_int(const char *s, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < 1 || v > 1000000) return false;
  *out = (int)v;
  return true;
}

static void parse_args(int argc, char **argv) {
  params_t *P = &g_params;
  bool have_size = false, have_rep = false, have_it = false, quick = false;
  P->size_bytes = 1ULL << 30;
  P->repeats = 5;
  P->iterations = 200;
  P->fam_primitives = P->fam_folio = P->fam_shootdown = true;
  P->folio_mask = (1u << FOLIO_NCFG) - 1;
  for (int i = 1; i < argc; i++) {
    char *a = argv[i], *val = NULL;
    char name[32];
    if (strncmp(a, "--", 2) != 0) bad_arg("unexpected argument '%s'; expected options only (see --help)", a);
    char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    if (nl >= sizeof name) nl = sizeof name - 1;
    memcpy(name, a, nl);
    name[nl] = 0;
    bool takes = strcmp(name, "--size") == 0 || strcmp(name, "--repeats") == 0 || strcmp(name, "--iterations") == 0 ||
                 strcmp(name, "--families") == 0 || strcmp(name, "--folios") == 0 || strcmp(name, "--out") == 0;
    if (takes) {
      if (eq) val = eq + 1;
      else if (i + 1 < argc) val = argv[++i];
      else bad_arg("%s needs a value; expected %s VALUE (see --help)", name, name);
    } else if (eq) {
      bad_arg("%s takes no value; expected %s alone", name, name);
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
      fputs(k_usage, stdout);
      exit(0);
    } else if (strcmp(name, "--quick") == 0) {
      quick = true;
    } else if (strcmp(name, "--size") == 0) {
      if (!parse_size(val, &P->size_bytes) || P->size_bytes == 0 || P->size_bytes % HB_PMD)
        bad_arg("bad --size '%s'; expected a positive multiple of 2M such as 64M or 1G", val);
      have_size = true;
    } else if (strcmp(name, "--repeats") == 0) {
      if (!parse_int(val, &P->repeats)) bad_arg("bad --repeats '%s'; expected an integer from 1 to 1000000", val);
      have_rep = true;
    } else if (strcmp(name, "--iterations") == 0) {
      if (!parse_int(val, &P->iterations))
        bad_arg("bad --iterations '%s'; expected an integer from 1 to 1000000", val);
      have_it = true;
    } else if (strcmp(name, "--families") == 0) {
      P->fam_primitives = P->fam_folio = P->fam_shootdown = false;
      char *dup = strdup(val), *save = NULL;
      for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "primitives") == 0) P->fam_primitives = true;
        else if (strcmp(t, "folio") == 0) P->fam_folio = true;
        else if (strcmp(t, "shootdown") == 0) P->fam_shootdown = true;
        else bad_arg("unknown family '%s' in --families; expected a comma list of primitives,folio,shootdown", t);
      }
      free(dup);
      if (!P->fam_primitives && !P->fam_folio && !P->fam_shootdown)
        bad_arg("empty --families; expected a comma list of primitives,folio,shootdown");
    } else if (strcmp(name, "--folios") == 0) {
      P->folio_mask = 0;
      char *dup = strdup(val), *save = NULL;
      for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = folio_cfg_index(t);
        if (k < 0)
          bad_arg("unknown folio configuration '%s' in --folios; expected a comma list of "
                  "4K,16K,32K,64K,128K,256K,512K,1M,2M,2M-pte", t);
        P->folio_mask |= 1u << k;
      }
      free(dup);
      if (!P->folio_mask) bad_arg("empty --folios; expected a comma list of 4K,16K,...,2M,2M-pte");
    } else if (strcmp(name, "--out") == 0) {
      if (!*val) bad_arg("empty --out; expected a file name");
      P->out = val;
    } else {
      bad_arg("unknown option '%s'; expected --size, --repeats, --iterations, --families, --folios, --out, "
              "--quick or --help", a);
    }
  }
  P->quick = quick;
  if (quick) {
    if (!have_size) P->size_bytes = 64ULL << 20;
    if (!have_rep) P->repeats = 2;
    if (!have_it) P->iterations = 20;
  }
  size_t len = 1;
  for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
  P->command = calloc(1, len);
  for (int i = 0; i < argc; i++) {
    if (i) strcat(P->command, " ");
    strcat(P->command, argv[i]);
  }
}

// ------------------------------------------------------------------ machine
static void cpuinfo_field(const char *info, const char *key, char *out, size_t cap) {
  out[0] = 0;
  size_t kl = strlen(key);
  for (const char *line = info; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, key, kl) != 0 || (line[kl] != ' ' && line[kl] != '\t' && line[kl] != ':')) continue;
    const char *c = strchr(line, ':');
    if (!c) continue;
    c++;
    while (*c == ' ') c++;
    const char *e = strchr(c, '\n');
    size_t n = e ? (size_t)(e - c) : strlen(c);
    if (n >= cap) n = cap - 1;
    memcpy(out, c, n);
    out[n] = 0;
    return;
  }
}

static char g_flags[8192];  // " " + the flags of the first CPU + " "

bool cpu_flag(const char *name) {
  if (!g_flags[0]) {
    static char info[1 << 16];
    char f[sizeof g_flags - 2];
    if (read_small("/proc/cpuinfo", info, sizeof info) < 0) info[0] = 0;
    cpuinfo_field(info, "flags", f, sizeof f);
    snprintf(g_flags, sizeof g_flags, " %s ", f);
  }
  char pat[64];
  snprintf(pat, sizeof pat, " %s ", name);
  return strstr(g_flags, pat) != NULL;
}

static void emit_machine(json_t *j) {
  static char info[1 << 16];
  if (read_small("/proc/cpuinfo", info, sizeof info) < 0) info[0] = 0;
  char model[256], family[32], modelno[32], vendor[64], mhz[64];
  cpuinfo_field(info, "model name", model, sizeof model);
  cpuinfo_field(info, "cpu family", family, sizeof family);
  cpuinfo_field(info, "model", modelno, sizeof modelno);
  cpuinfo_field(info, "vendor_id", vendor, sizeof vendor);
  cpuinfo_field(info, "cpu MHz", mhz, sizeof mhz);
  struct utsname u;
  uname(&u);
  char mem[4096];
  int64_t memtotal = 0;
  if (read_small("/proc/meminfo", mem, sizeof mem) > 0) {
    char *p = strstr(mem, "MemTotal:");
    if (p) memtotal = strtoll(p + 9, NULL, 10) * 1024;
  }
  j_obj(j);
  j_kstr(j, "cpu_model", model);
  j_kint(j, "cpu_family", strtol(family, NULL, 10));
  j_kint(j, "cpu_model_number", strtol(modelno, NULL, 10));
  j_kstr(j, "vendor", vendor);
  j_kint(j, "cpus_online", sysconf(_SC_NPROCESSORS_ONLN));
  j_kbool(j, "hypervisor", cpu_flag("hypervisor"));
  j_knum(j, "mhz", strtod(mhz, NULL));
  j_kstr(j, "kernel_release", u.release);
  j_kint(j, "page_size", sysconf(_SC_PAGESIZE));
  j_kint(j, "mem_total_bytes", memtotal);
  j_key(j, "cpu_flags");
  j_obj(j);
  static const char *const k_flags[] = {"erms", "fsrm", "rep_good", "pcid", "invpcid", "invlpgb"};
  for (size_t i = 0; i < sizeof k_flags / sizeof k_flags[0]; i++) j_kbool(j, k_flags[i], cpu_flag(k_flags[i]));
  j_obj_end(j);
  j_key(j, "thp_sizes_kB");
  j_arr(j);
  for (int i = 0; i < g_thp.nsizes; i++) j_int(j, g_thp.sizes_kb[i]);
  j_arr_end(j);
  j_key(j, "thp_state_before");
  j_obj(j);
  for (int i = 0; i < thp_saved_count(); i++) j_kstr(j, thp_saved_key(i), thp_saved_value(i));
  j_obj_end(j);
  j_obj_end(j);
}

// ------------------------------------------------------------------ main
int main(int argc, char **argv) {
  elapsed_s();
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);  // fixed: no large brk heap that THP could back
  parse_args(argc, argv);

  char tmp_path[4096];
  int out_fd = 1;
  if (g_params.out) {
    if (snprintf(tmp_path, sizeof tmp_path, "%s.tmp", g_params.out) >= (int)sizeof tmp_path)
      bad_arg("--out path too long; expected a shorter file name");
  }
  thp_preflight();  // exits 2 with one line, nothing changed
  own_memory_nohugepage(NULL, 0);  // before any THP policy is armed
  if (g_params.fam_folio || g_params.fam_primitives) {  // fork_cow holds the parent's and the child's copy
    char mem[8192];
    int64_t avail = 0;
    if (read_small("/proc/meminfo", mem, sizeof mem) > 0) {
      char *p = strstr(mem, "MemAvailable:");
      if (p) avail = strtoll(p + 13, NULL, 10) * 1024;
    }
    const double prim_need = 3.0 * (1 << 30);  // two 1 GiB buffers, 256 MiB, 64 MiB, margin
    if (g_params.fam_primitives && avail && prim_need > (double)avail) {
      fprintf(stderr, "hostbench: the primitives family needs about 3 GiB of available memory, MemAvailable is "
              "%lld; expected more free memory or --families without primitives; nothing was changed\n",
              (long long)avail);
      return 2;
    }
    if (g_params.fam_folio && avail && (double)g_params.size_bytes * 2.5 > (double)avail) {
      fprintf(stderr, "hostbench: --size %llu needs about 2.5x that in available memory (fork_cow copies it), "
              "MemAvailable is %lld; expected a smaller --size; nothing was changed\n",
              (unsigned long long)g_params.size_bytes, (long long)avail);
      return 2;
    }
  }
  if (g_params.out) {
    out_fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      fprintf(stderr, "hostbench: cannot create %s: %s; expected a writable --out path; nothing was changed\n",
              tmp_path, strerror(errno));
      return 2;
    }
    snprintf(g_tmp_out, sizeof g_tmp_out, "%s", tmp_path);
  }

  time_t t = time(NULL);
  struct tm tmv;
  gmtime_r(&t, &tmv);
  char created[64];
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tmv);

  vmstat_init();
  mthp_init();
  thp_save_and_arm();  // from here on every exit path restores
  {
    char line[2048];
    size_t l = (size_t)snprintf(line, sizeof line, "hostbench: saved THP state (under " THP_DIR "):");
    for (int i = 0; i < thp_saved_count() && l < sizeof line; i++)
      l += (size_t)snprintf(line + l, sizeof line - l, " %s=%s", thp_saved_key(i), thp_saved_value(i));
    fprintf(stderr, "%s\n", line);
  }
  thp_freeze_khugepaged();
  progress("size %llu bytes, %d repeats, %d iterations; THP settings saved (%d files)",
           (unsigned long long)g_params.size_bytes, g_params.repeats, g_params.iterations, thp_saved_count());

  // Highest CFS weight for the measuring threads (thread A and children inherit it), so
  // a normal-priority task sharing CPU 0 or 1 gets about 1 % of it instead of half.
  if (setpriority(PRIO_PROCESS, 0, -20) != 0)
    fprintf(stderr, "hostbench: WARNING: setpriority(-20) failed: %s\n", strerror(errno));
  // The shootdown family first: it is short, and its "running" mode needs vCPU 0 resident,
  // which a hypervisor is least likely to withhold before minutes of full load.
  bool folio_ok = true;
  if (g_params.fam_primitives) primitives_run();  // user space only, first (< 30 s)
  if (g_params.fam_shootdown) shootdown_run();
  if (g_params.fam_folio) folio_ok = folio_run();

  bool restored = thp_restore_and_verify();
  progress("THP settings %s", restored ? "restored" : "RESTORE MISMATCH");
  if (!folio_ok) fprintf(stderr, "hostbench: WARNING: some folio checks failed (see above)\n");

  json_t j;
  j_init(&j);
  j_obj(&j);
  j_kstr(&j, "format", "tlbsim-hostbench");
  j_kint(&j, "version", 1);
  j_kstr(&j, "created", created);
  j_kstr(&j, "command", g_params.command);
  j_key(&j, "machine");
  emit_machine(&j);
  j_key(&j, "params");
  j_obj(&j);
  j_kint(&j, "size_bytes", (int64_t)g_params.size_bytes);
  j_kint(&j, "repeats", g_params.repeats);
  j_kint(&j, "iterations", g_params.iterations);
  j_kbool(&j, "warmup", true);
  j_obj_end(&j);
  j_kbool(&j, "restored", restored);
  j_kbool(&j, "folio_checks_passed", folio_ok);
  j_key(&j, "primitives");
  primitives_emit(&j);  // {} when the family did not run
  j_key(&j, "folio");
  if (g_params.fam_folio) folio_emit(&j);
  else {
    j_obj(&j);
    j_obj_end(&j);
  }
  j_key(&j, "shootdown");
  if (g_params.fam_shootdown) shootdown_emit(&j);
  else {
    j_arr(&j);
    j_arr_end(&j);
  }
  j_knum(&j, "elapsed_seconds", (double)(int64_t)(elapsed_s() * 1000) / 1000.0);
  j_obj_end(&j);

  size_t off = 0;
  while (off < j.len) {
    ssize_t n = write(out_fd, j.buf + off, j.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("writing the JSON output failed: %s", strerror(errno));
    off += (size_t)n;
  }
  if (write(out_fd, "\n", 1) != 1) die("writing the JSON output failed: %s", strerror(errno));
  if (g_params.out) {
    if (fsync(out_fd) != 0 || close(out_fd) != 0) die("writing %s failed: %s", tmp_path, strerror(errno));
    if (rename(tmp_path, g_params.out) != 0) die("renaming %s to %s failed: %s", tmp_path, g_params.out, strerror(errno));
    g_tmp_out[0] = 0;
    progress("wrote %s", g_params.out);
  }
  return restored ? 0 : 1;
}
