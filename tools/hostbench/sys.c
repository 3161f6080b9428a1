// Utilities, the THP sysfs state (save / set / restore, also from signal handlers),
// and the kernel counters hostbench reads (/proc/vmstat, mTHP stats, /proc/interrupts).
#include "hostbench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// ============================================================== util
static int64_t g_t_start;

int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t thread_minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

double elapsed_s(void) {
  if (!g_t_start) g_t_start = now_ns();
  return (double)(now_ns() - g_t_start) / 1e9;
}

void progress(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "hostbench [%7.1fs] %s\n", elapsed_s(), msg);
}

void die(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "hostbench: %s\n", msg);
  exit(1);  // the atexit hook restores the THP settings
}

ssize_t read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return -1;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = 0;
  return (ssize_t)len;
}

void *big_alloc(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap of %zu bytes for a buffer failed: %s", bytes, strerror(errno));
  madvise(p, bytes, MADV_NOHUGEPAGE);  // keep smaps_rollup's AnonHugePages about the test range
  return p;
}

void big_free(void *p, size_t bytes) { munmap(p, bytes); }

void own_memory_nohugepage(const void *keep, size_t keep_len) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return;
  const uintptr_t k0 = (uintptr_t)keep, k1 = k0 + keep_len;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) != 3) continue;
    if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p') continue;
    // The part outside the measured mapping (before it and after it).
    if (a < k0 || !keep_len) madvise((void *)a, (keep_len && b > k0 ? k0 : b) - a, MADV_NOHUGEPAGE);
    if (keep_len && b > k1) madvise((void *)(a > k1 ? a : k1), b - (a > k1 ? a : k1), MADV_NOHUGEPAGE);
  }
  fclose(f);
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity(CPU %d) failed: %s", cpu, strerror(errno));
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int64_t median_i64(const int64_t *v, int n) {
  if (n <= 0) return 0;
  int64_t tmp[n];
  memcpy(tmp, v, sizeof(int64_t) * (size_t)n);
  qsort(tmp, (size_t)n, sizeof(int64_t), cmp_i64);
  return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

int64_t min_i64(const int64_t *v, int n) {
  int64_t m = n > 0 ? v[0] : 0;
  for (int i = 1; i < n; i++)
    if (v[i] < m) m = v[i];
  return m;
}

// ============================================================== THP state
thp_info_t g_thp;
pid_t g_main_pid;

typedef struct {
  char rel[64];    // relative to THP_DIR
  char path[160];  // absolute
  char value[32];  // saved value, as written back
  size_t vlen;
} saved_t;
static saved_t g_saved[40];
static int g_nsaved;
static volatile sig_atomic_t g_armed;  // g_saved is complete; restore on exit/signal

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void scan_sizes(void) {
  DIR *d = opendir(THP_DIR);
  if (!d) return;
  struct dirent *e;
  g_thp.nsizes = 0;
  while ((e = readdir(d))) {
    int kb;
    char tail[8];
    if (sscanf(e->d_name, "hugepages-%dkB%7s", &kb, tail) != 1) continue;
    char p[512];
    snprintf(p, sizeof p, THP_DIR "/%s/enabled", e->d_name);
    if (access(p, F_OK) != 0) continue;  // e.g. hugepages-8kB: shmem/file only, no anon control
    if (g_thp.nsizes < 32) g_thp.sizes_kb[g_thp.nsizes++] = kb;
  }
  closedir(d);
  qsort(g_thp.sizes_kb, (size_t)g_thp.nsizes, sizeof(int), cmp_int);
}

static void add_file(const char *rel) {
  saved_t *s = &g_saved[g_nsaved++];
  snprintf(s->rel, sizeof s->rel, "%s", rel);
  snprintf(s->path, sizeof s->path, THP_DIR "/%s", rel);
}

static _Noreturn void refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void refuse(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "hostbench: %s; nothing was changed\n", msg);
  exit(2);
}

void thp_preflight(void) {
  uid_t euid = geteuid();
  if (euid != 0)
    refuse("must run as root to change " THP_DIR " (found euid %u)", (unsigned)euid);
  struct stat st;
  if (stat(THP_DIR, &st) != 0)
    refuse(THP_DIR " not found (kernel without CONFIG_TRANSPARENT_HUGEPAGE?)");
  scan_sizes();
  if (g_thp.nsizes == 0) refuse("no " THP_DIR "/hugepages-<N>kB/enabled files (kernel older than 6.8?)");
  bool have2m = false;
  for (int i = 0; i < g_thp.nsizes; i++) have2m |= g_thp.sizes_kb[i] == 2048;
  if (!have2m) refuse(THP_DIR "/hugepages-2048kB/enabled not found (not x86-64 with 4 KiB pages?)");
  g_nsaved = 0;
  add_file("enabled");
  for (int i = 0; i < g_thp.nsizes; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, "hugepages-%dkB/enabled", g_thp.sizes_kb[i]);
    add_file(rel);
  }
  add_file("khugepaged/scan_sleep_millisecs");
  for (int i = 0; i < g_nsaved; i++) {
    int fd = open(g_saved[i].path, O_RDWR | O_CLOEXEC);  // opening does not store anything
    if (fd < 0) refuse("cannot open %s for reading and writing: %s", g_saved[i].path, strerror(errno));
    close(fd);
  }
  const char *ro[] = {"/proc/self/pagemap", "/proc/kpageflags", "/proc/vmstat", "/proc/interrupts",
                      "/proc/self/smaps_rollup"};
  for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
    int fd = open(ro[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0) refuse("cannot read %s: %s", ro[i], strerror(errno));
    close(fd);
  }
  if (g_params.fam_shootdown || g_params.fam_folio || g_params.fam_primitives) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0 || !CPU_ISSET(0, &set) || !CPU_ISSET(1, &set))
      refuse("CPUs 0 and 1 must both be online and allowed (the benchmarks pin to them)");
  }
  if (g_params.fam_shootdown) {
    int64_t row[HB_MAXCPU];
    if (tlb_row_read(row) < 2) refuse("no TLB: row with 2 CPU columns in /proc/interrupts");
  }
}

static void parse_value(const char *raw, char *out, size_t cap) {
  const char *lb = strchr(raw, '['), *rb = lb ? strchr(lb, ']') : NULL;
  const char *b = raw, *e = raw + strlen(raw);
  if (lb && rb) {
    b = lb + 1;
    e = rb;
  }
  while (b < e && (*b == ' ' || *b == '\n' || *b == '\t')) b++;
  while (e > b && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t')) e--;
  size_t n = (size_t)(e - b) < cap - 1 ? (size_t)(e - b) : cap - 1;
  memcpy(out, b, n);
  out[n] = 0;
}

static void restore_raw(void) {  // async-signal-safe: open/write/close only
  for (int i = g_nsaved - 1; i >= 0; i--) {  // per-size files and top level, khugepaged first
    int fd = open(g_saved[i].path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t r = write(fd, g_saved[i].value, g_saved[i].vlen);
    (void)r;
    close(fd);
  }
}

char g_tmp_out[4096];  // FILE.tmp while it is incomplete; removed on a failed exit

static void restore_atexit(void) {
  if (g_tmp_out[0] && getpid() == g_main_pid) unlink(g_tmp_out);
  if (g_armed && getpid() == g_main_pid) {
    restore_raw();
    g_armed = 0;
    fprintf(stderr, "hostbench: THP settings restored\n");
  }
}

static void fatal_handler(int sig) {
  if (getpid() != g_main_pid) _exit(128 + sig);  // a forked child: never restore
  if (g_armed) restore_raw();  // idempotent; also safe if another thread restores too
  if (g_tmp_out[0]) unlink(g_tmp_out);
  static const char msg[] = "hostbench: fatal signal, THP settings restored\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  // Only now the default action: with SA_RESETHAND a second copy of the signal (timeout(1)
  // sends one to the process and one to its group) would kill the process at generation
  // time, mid-restore, even though the handler blocks it.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, NULL);
  raise(sig);  // pending until the handler returns, then the default action runs
}

static const int k_fatal[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,   SIGSEGV, SIGBUS,  SIGABRT,
                              SIGFPE,  SIGILL,  SIGTRAP, SIGSYS,    SIGPIPE, SIGALRM, SIGUSR1,
                              SIGUSR2, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGPWR,  SIGSTKFLT};

void install_fatal_handlers(void) {
  static char altstack[65536];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fatal_handler;
  sa.sa_flags = SA_ONSTACK;
  sigfillset(&sa.sa_mask);  // every other fatal signal waits (and keeps our handler)
  for (size_t i = 0; i < sizeof k_fatal / sizeof k_fatal[0]; i++) sigaction(k_fatal[i], &sa, NULL);
}

void thp_save_and_arm(void) {
  for (int i = 0; i < g_nsaved; i++) {
    char raw[256];
    if (read_small(g_saved[i].path, raw, sizeof raw) < 0)
      refuse("cannot read %s: %s", g_saved[i].path, strerror(errno));
    parse_value(raw, g_saved[i].value, sizeof g_saved[i].value);
    if (!g_saved[i].value[0]) refuse("cannot parse %s (\"%s\")", g_saved[i].path, raw);
    g_saved[i].vlen = strlen(g_saved[i].value);
  }
  g_main_pid = getpid();
  install_fatal_handlers();
  atexit(restore_atexit);
  g_armed = 1;
}

void thp_write(const char *rel, const char *value) {
  char path[256];
  snprintf(path, sizeof path, THP_DIR "/%s", rel);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open %s: %s", path, strerror(errno));
  ssize_t n = write(fd, value, strlen(value));
  int err = errno;
  close(fd);
  if (n != (ssize_t)strlen(value)) die("writing \"%s\" to %s failed: %s", value, path, strerror(err));
}

void thp_select(int size_kb) {
  thp_write("enabled", "never");
  for (int i = 0; i < g_thp.nsizes; i++) {  // "never" first, so two sizes are never on at once
    if (g_thp.sizes_kb[i] == size_kb) continue;
    char rel[64];
    snprintf(rel, sizeof rel, "hugepages-%dkB/enabled", g_thp.sizes_kb[i]);
    thp_write(rel, "never");
  }
  if (size_kb) {
    char rel[64];
    snprintf(rel, sizeof rel, "hugepages-%dkB/enabled", size_kb);
    thp_write(rel, "always");
  }
}

void thp_freeze_khugepaged(void) {
  // The write wakes khugepaged for one pass now (no test mapping exists yet), then it
  // sleeps a day, so it cannot collapse the PTE-mapped THPs of 2M-pte.
  thp_write("khugepaged/scan_sleep_millisecs", "86400000");
}

void thp_restore_policy(void) {
  for (int i = g_nsaved - 1; i >= 0; i--)
    if (strncmp(g_saved[i].rel, "khugepaged/", 11) != 0) thp_write(g_saved[i].rel, g_saved[i].value);
}

bool thp_restore_and_verify(void) {
  if (!g_armed) return false;
  restore_raw();
  bool ok = true;
  for (int i = 0; i < g_nsaved; i++) {
    char raw[256], v[32];
    if (read_small(g_saved[i].path, raw, sizeof raw) < 0) {
      ok = false;
      continue;
    }
    parse_value(raw, v, sizeof v);
    if (strcmp(v, g_saved[i].value) != 0) {
      fprintf(stderr, "hostbench: WARNING: %s is \"%s\" after restore, expected \"%s\"\n", g_saved[i].path, v,
              g_saved[i].value);
      ok = false;
    }
  }
  g_armed = 0;
  return ok;
}

int thp_saved_count(void) { return g_nsaved; }
const char *thp_saved_key(int i) { return g_saved[i].rel; }
const char *thp_saved_value(int i) { return g_saved[i].value; }

// ============================================================== counters
static char *g_vm_names[HB_MAXSTAT];
static int g_vm_n;
static char g_vm_buf[32768];

void vmstat_init(void) {
  if (read_small("/proc/vmstat", g_vm_buf, sizeof g_vm_buf) < 0) die("cannot read /proc/vmstat");
  g_vm_n = 0;
  for (char *line = strtok(g_vm_buf, "\n"); line && g_vm_n < HB_MAXSTAT; line = strtok(NULL, "\n")) {
    char *sp = strchr(line, ' ');
    if (!sp) continue;
    *sp = 0;
    g_vm_names[g_vm_n++] = strdup(line);
  }
}

bool vmstat_has_prefix(const char *prefix) {
  for (int i = 0; i < g_vm_n; i++)
    if (strncmp(g_vm_names[i], prefix, strlen(prefix)) == 0) return true;
  return false;
}

void vmstat_read(statvals_t *s) {
  s->n = g_vm_n;
  memset(s->v, 0, sizeof(int64_t) * (size_t)g_vm_n);
  if (read_small("/proc/vmstat", g_vm_buf, sizeof g_vm_buf) < 0) return;
  char *p = g_vm_buf;
  int idx = 0;
  while (*p) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = 0;
    char *sp = strchr(p, ' ');
    if (sp) {
      *sp = 0;
      int k = -1;
      if (idx < g_vm_n && strcmp(g_vm_names[idx], p) == 0) k = idx;
      else
        for (int i = 0; i < g_vm_n; i++)
          if (strcmp(g_vm_names[i], p) == 0) k = i;
      if (k >= 0) s->v[k] = strtoll(sp + 1, NULL, 10);
      idx = k + 1;
    }
    if (!nl) break;
    p = nl + 1;
  }
}

void vmstat_delta(kvlist_t *out, const statvals_t *a, const statvals_t *b, const char *prefix) {
  out->n = 0;
  out->keys = malloc(sizeof(char *) * (size_t)(g_vm_n + 1));
  out->d = malloc(sizeof(int64_t) * (size_t)(g_vm_n + 1));
  for (int i = 0; i < g_vm_n; i++) {
    if (prefix && strncmp(g_vm_names[i], prefix, strlen(prefix)) != 0) continue;
    int64_t d = b->v[i] - a->v[i];
    if (d == 0) continue;
    out->keys[out->n] = g_vm_names[i];
    out->d[out->n++] = d;
  }
}

static char *g_mt_paths[HB_MAXSTAT];
static char *g_mt_keys[HB_MAXSTAT];
static int g_mt_n;

typedef struct {
  int kb;
  char *name;
} mtent_t;

static int cmp_mt(const void *a, const void *b) {
  const mtent_t *x = a, *y = b;
  if (x->kb != y->kb) return x->kb - y->kb;
  return strcmp(x->name, y->name);
}

void mthp_init(void) {
  DIR *d = opendir(THP_DIR);
  if (!d) return;
  mtent_t ents[HB_MAXSTAT];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int kb;
    char tail[8];
    if (sscanf(e->d_name, "hugepages-%dkB%7s", &kb, tail) != 1) continue;
    char sp[512];
    snprintf(sp, sizeof sp, THP_DIR "/%s/stats", e->d_name);
    DIR *sd = opendir(sp);
    if (!sd) continue;
    struct dirent *f;
    while ((f = readdir(sd)) && n < HB_MAXSTAT) {
      if (f->d_name[0] == '.') continue;
      ents[n].kb = kb;
      ents[n].name = strdup(f->d_name);
      n++;
    }
    closedir(sd);
  }
  closedir(d);
  qsort(ents, (size_t)n, sizeof ents[0], cmp_mt);
  for (int i = 0; i < n; i++) {
    char buf[512];
    snprintf(buf, sizeof buf, THP_DIR "/hugepages-%dkB/stats/%s", ents[i].kb, ents[i].name);
    g_mt_paths[i] = strdup(buf);
    snprintf(buf, sizeof buf, "%dkB/%s", ents[i].kb, ents[i].name);
    g_mt_keys[i] = strdup(buf);
    free(ents[i].name);
  }
  g_mt_n = n;
}

void mthp_read(statvals_t *s) {
  s->n = g_mt_n;
  for (int i = 0; i < g_mt_n; i++) {
    char buf[64];
    s->v[i] = read_small(g_mt_paths[i], buf, sizeof buf) > 0 ? strtoll(buf, NULL, 10) : 0;
  }
}

void mthp_delta(kvlist_t *out, const statvals_t *a, const statvals_t *b) {
  out->n = 0;
  out->keys = malloc(sizeof(char *) * (size_t)(g_mt_n + 1));
  out->d = malloc(sizeof(int64_t) * (size_t)(g_mt_n + 1));
  for (int i = 0; i < g_mt_n; i++) {
    int64_t d = b->v[i] - a->v[i];
    if (d == 0) continue;
    out->keys[out->n] = g_mt_keys[i];
    out->d[out->n++] = d;
  }
}

int tlb_row_read(int64_t *out) {
  static char buf[65536];
  if (read_small("/proc/interrupts", buf, sizeof buf) <= 0) return 0;
  int ncpu = 0;
  char *nl = strchr(buf, '\n');
  for (char *p = buf; p && p < (nl ? nl : buf + strlen(buf)); p++)
    if (strncmp(p, "CPU", 3) == 0) {
      ncpu++;
      p += 2;
    }
  if (ncpu > HB_MAXCPU) ncpu = HB_MAXCPU;
  char *line = nl;
  while (line) {
    line++;
    char *p = line;
    while (*p == ' ') p++;
    if (strncmp(p, "TLB:", 4) == 0) {
      p += 4;
      for (int c = 0; c < ncpu; c++) out[c] = strtoll(p, &p, 10);
      return ncpu;
    }
    line = strchr(line, '\n');
  }
  return 0;
}
