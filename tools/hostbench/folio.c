// The folio family: one anonymous mapping per scenario, populated under one THP
// policy (order 0, each mTHP size, PMD THP, PMD THP remapped by PTEs), and the
// fault / zap / fork / COW / mprotect paths timed on it.
#include "hostbench.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const folio_cfg_names[FOLIO_NCFG] = {"4K",   "16K", "32K", "64K", "128K",
                                                 "256K", "512K", "1M", "2M",  "2M-pte"};
static const struct {
  uint64_t bytes;  // expected folio size
  int kb;          // hugepages-<kb>kB/enabled set to "always" (0: none)
  bool pmd;        // PMD-mapped after populate
  bool pte_remap;  // PMD THP, then every PMD split by an mprotect round trip
} k_cfg[FOLIO_NCFG] = {
    {4096, 0, false, false},         {16384, 16, false, false},     {32768, 32, false, false},
    {65536, 64, false, false},       {131072, 128, false, false},   {262144, 256, false, false},
    {524288, 512, false, false},     {1048576, 1024, false, false}, {2097152, 2048, true, false},
    {2097152, 2048, false, true},
};

int folio_cfg_index(const char *name) {
  for (int i = 0; i < FOLIO_NCFG; i++)
    if (strcmp(name, folio_cfg_names[i]) == 0) return i;
  return -1;
}

enum {
  OP_POPULATE,
  OP_WRITE_NOFAULT,
  OP_MUNMAP,
  OP_DONTNEED,
  OP_FORK,
  OP_CHILD_EXIT,
  OP_COW_REUSE,
  OP_MUNMAP_AFTER_FORK,
  OP_COW_WRITE,
  OP_MPROTECT_RO_4K,
  OP_MPROTECT_RW_4K,
  OP_DONTNEED_4K,
  NOPS
};
static const char *const k_op_names[NOPS] = {
    "populate",          "write_nofault", "munmap",         "dontneed",       "fork",          "child_exit",
    "cow_reuse",         "munmap_after_fork", "cow_write",  "mprotect_ro_4k", "mprotect_rw_4k", "dontneed_4k"};

typedef struct {
  int64_t *ns, *cpu, *flt;
  int n;
  int64_t calls;
  bool have_stats;
  kvlist_t vm, mt;
} opres_t;

#define MAXHIST 64
typedef struct {
  bool done;
  int nh;
  uint64_t h_size[MAXHIST], h_pages[MAXHIST];
  int64_t ahp;
  double frac;
  bool ok;
} check_t;

typedef struct {
  bool run;
  check_t check;
  opres_t ops[NOPS];
  int populate_retries;     // populate samples dropped: a reporting pass overlapped them
  int populate_overlapped;  // kept samples that still overlapped one (attempts exhausted)
} cfgres_t;
static cfgres_t g_res[FOLIO_NCFG];

// ------------------------------------------------------------------ measuring
static statvals_t s_vm0, s_vm1, s_mt0, s_mt1;
typedef struct {
  bool stats;
  int64_t t0, c0, f0;
} meas_t;

static void op_begin(meas_t *m, bool stats) {
  m->stats = stats;
  if (stats) {
    vmstat_read(&s_vm0);
    mthp_read(&s_mt0);
  }
  m->f0 = thread_minflt();
  m->c0 = thread_cpu_ns();
  m->t0 = now_ns();
}

static void op_end(meas_t *m, opres_t *r, int64_t calls) {
  int64_t t1 = now_ns();
  int64_t c1 = thread_cpu_ns();
  int64_t f1 = thread_minflt();
  if (m->stats) {
    vmstat_read(&s_vm1);
    mthp_read(&s_mt1);
    vmstat_delta(&r->vm, &s_vm0, &s_vm1, NULL);
    mthp_delta(&r->mt, &s_mt0, &s_mt1);
    r->have_stats = true;
  }
  r->ns[r->n] = t1 - m->t0;
  r->cpu[r->n] = c1 - m->c0;
  r->flt[r->n] = f1 - m->f0;
  r->n++;
  r->calls = calls;
}

// ------------------------------------------------------------------ helpers
char *map_aligned(size_t size) {
  size_t len = size + HB_PMD;
  char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) die("mmap of %zu bytes failed: %s", len, strerror(errno));
  char *p = (char *)(((uintptr_t)raw + HB_PMD - 1) & ~(uintptr_t)(HB_PMD - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  if (p + size < raw + len) munmap(p + size, (size_t)(raw + len - (p + size)));
  return p;
}

static void touch(char *p, size_t size) {
  volatile char *v = p;
  for (size_t off = 0; off < size; off += HB_PAGE) v[off] = 1;
}

static void xmunmap(char *p, size_t size) {
  if (munmap(p, size) != 0) die("munmap failed: %s", strerror(errno));
}

static void remap_pte(char *p, size_t size) {  // split every PMD; folios stay 2 MiB
  for (size_t off = 0; off < size; off += HB_PMD) {
    if (mprotect(p + off, HB_PAGE, PROT_READ) != 0 || mprotect(p + off, HB_PAGE, PROT_READ | PROT_WRITE) != 0)
      die("mprotect for the PTE remap failed: %s", strerror(errno));
  }
}

// The warm-up (inlined in map_populate, which every scenario starts with): untimed, the
// same size in the same policy, mapped, touched and unmapped right before the scenario's
// own map + populate, so the populate reuses pages the guest freed microseconds earlier
// (the buddy allocator hands out recently freed pages first) instead of blocks that free
// page reporting has returned to the host (which the host then faults in again). Nothing
// slow runs between the warm-up's munmap and the populate. This copy is stats_prewarm's.
static void warmup(size_t size) {
  char *w = map_aligned(size);
  touch(w, size);
  xmunmap(w, size);
}

// populate's counters without a read between the warm-up and the populate: S_a, an
// extra warm-up, S_b here; then the warm-up, the timed populate and S_c. populate's
// delta is (S_c - S_b) - (S_b - S_a), so s_vm0 / s_mt0 become 2 S_b - S_a.
static void stats_prewarm(size_t size) {
  vmstat_read(&s_vm0);
  mthp_read(&s_mt0);
  warmup(size);
  vmstat_read(&s_vm1);
  mthp_read(&s_mt1);
  for (int i = 0; i < s_vm0.n; i++) s_vm0.v[i] = 2 * s_vm1.v[i] - s_vm0.v[i];
  for (int i = 0; i < s_mt0.n; i++) s_mt0.v[i] = 2 * s_mt1.v[i] - s_mt0.v[i];
}

// r: time it (basic); stats: s_vm0 / s_mt0 were prepared by stats_prewarm().
static void populate(int ci, char *p, size_t size, meas_t *m, opres_t *r, bool stats) {
  if (r) {
    op_begin(m, false);
    m->stats = stats;  // op_end reads S_c and takes the delta against the prepared values
    touch(p, size);
    op_end(m, r, 1);
  } else {
    touch(p, size);
  }
  if (k_cfg[ci].pte_remap) remap_pte(p, size);
}

// Pages reported so far by free page reporting, where the kernel exposes the count (not
// upstream; -1 if absent). Read only, never written.
#define REPORTED_KIB "/sys/module/page_reporting/parameters/reported_kib"
static int64_t reported_kib(void) {
  char b[64];
  return read_small(REPORTED_KIB, b, sizeof b) > 0 ? strtoll(b, NULL, 10) : -1;
}

// Every scenario starts with this: warm-up, then the scenario's mapping and populate.
// *overlap: a reporting pass reported pages between the warm-up's munmap and the end of
// the populate (it takes the just-freed blocks first), so the populate met host faults.
// `warm` bytes are warmed: more than `size` when the scenario then allocates more
// (fork_cow's copies need a second `size`).
static char *map_populate_warm(int ci, size_t size, size_t warm, meas_t *m, opres_t *r, bool stats,
                               bool *overlap) {
  char *w = map_aligned(warm);
  touch(w, warm);
  int64_t k0 = reported_kib();  // before the munmap: nothing between it and the populate
  xmunmap(w, warm);
  char *p = map_aligned(size);
  populate(ci, p, size, m, r, stats);
  if (overlap) *overlap = k0 >= 0 && reported_kib() != k0;
  return p;
}

// Every scenario warms twice its size: page tables, the child's tables at fork and the
// COW copies then also come from just-freed guest memory.
static char *map_populate(int ci, size_t size, meas_t *m, opres_t *r, bool stats, bool *overlap) {
  return map_populate_warm(ci, size, 2 * size, m, r, stats, overlap);
}

// A child pinned to CPU 0 that blocks until the pipe is written or closed.
static pid_t fork_child_raw(int pfd[2]);
// The measured mapping is the one fork_child's callers just populated: everything else
// of the harness stays order-0 so the child's exit cannot leave a harness folio
// partially mapped (one split_deferred per fork at 16K and 64K otherwise).
static char *g_measured;
static size_t g_measured_len;
static pid_t fork_child(int pfd[2]) {
  own_memory_nohugepage(g_measured, g_measured_len);
  return fork_child_raw(pfd);
}
static pid_t fork_child_raw(int pfd[2]) {
  pid_t pid = fork();
  if (pid == 0) {
    close(pfd[1]);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set);
    char c;
    while (read(pfd[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  if (pid < 0) die("fork failed: %s", strerror(errno));
  return pid;
}

static void reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) die("waitpid failed: %s", strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("a forked child ended abnormally (status %d)", st);
}

static void release(int wfd) {
  if (write(wfd, "x", 1) != 1) die("write to the child pipe failed: %s", strerror(errno));
}

static void xpipe(int pfd[2]) {
  if (pipe2(pfd, O_CLOEXEC) != 0) die("pipe failed: %s", strerror(errno));
}

// ------------------------------------------------------------------ folio check
#define KPF_COMPOUND_HEAD (1ULL << 15)
#define KPF_COMPOUND_TAIL (1ULL << 16)
#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)

static int g_kpf_fd = -1;
#define KPF_WIN 256  // entries per /proc/kpageflags read: order-0 PFNs are scattered
static uint64_t g_kpf_win[KPF_WIN];
static uint64_t g_kpf_start = UINT64_MAX, g_kpf_n;

static uint64_t kpf_get(uint64_t pfn) {
  if (g_kpf_start == UINT64_MAX || pfn < g_kpf_start || pfn >= g_kpf_start + g_kpf_n) {
    uint64_t start = pfn & ~(uint64_t)(KPF_WIN - 1);
    ssize_t r = pread(g_kpf_fd, g_kpf_win, sizeof g_kpf_win, (off_t)(start * 8));
    if (r <= 0) {
      g_kpf_start = UINT64_MAX;
      return 0;
    }
    g_kpf_start = start;
    g_kpf_n = (uint64_t)r / 8;
    if (pfn >= start + g_kpf_n) return 0;
  }
  return g_kpf_win[pfn - g_kpf_start];
}

// Pages of the folio containing pfn (head + the tails that follow it); *head = head pfn.
static uint64_t folio_pages_at(uint64_t pfn, uint64_t *head) {
  const uint64_t cap = 1ULL << 18;
  uint64_t f = kpf_get(pfn);
  *head = pfn;
  if (!(f & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL))) return 1;
  if (f & KPF_COMPOUND_TAIL) {
    uint64_t h = pfn, k = 0;
    for (;;) {
      if (h == 0 || ++k > cap) return 1;
      uint64_t g = kpf_get(--h);
      if (g & KPF_COMPOUND_HEAD) break;
      if (!(g & KPF_COMPOUND_TAIL)) return 1;
    }
    *head = h;
  }
  uint64_t n = 1;
  while (n < cap && (kpf_get(*head + n) & KPF_COMPOUND_TAIL)) n++;
  return n;
}

int64_t anon_huge_pages_bytes(void) {
  char buf[8192];
  if (read_small("/proc/self/smaps_rollup", buf, sizeof buf) < 0) return -1;
  char *p = strstr(buf, "\nAnonHugePages:");
  return p ? strtoll(p + 15, NULL, 10) * 1024 : -1;
}

static void hist_add(check_t *c, uint64_t size) {
  for (int i = 0; i < c->nh; i++)
    if (c->h_size[i] == size) {
      c->h_pages[i]++;
      return;
    }
  if (c->nh == MAXHIST) return;
  int i = c->nh++;
  while (i > 0 && c->h_size[i - 1] > size) {  // keep ascending
    c->h_size[i] = c->h_size[i - 1];
    c->h_pages[i] = c->h_pages[i - 1];
    i--;
  }
  c->h_size[i] = size;
  c->h_pages[i] = 1;
}

static void folio_check(int ci, char *p, size_t size, check_t *c) {
  size_t np = size / HB_PAGE;
  uint64_t *pm = big_alloc(np * 8);
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open /proc/self/pagemap: %s", strerror(errno));
  size_t got = 0;
  while (got < np * 8) {
    ssize_t r = pread(fd, (char *)pm + got, np * 8 - got, (off_t)(((uintptr_t)p / HB_PAGE) * 8 + got));
    if (r <= 0) die("reading /proc/self/pagemap failed: %s", r < 0 ? strerror(errno) : "short read");
    got += (size_t)r;
  }
  close(fd);
  g_kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  if (g_kpf_fd < 0) die("cannot open /proc/kpageflags: %s", strerror(errno));
  g_kpf_start = UINT64_MAX;
  memset(c, 0, sizeof *c);
  uint64_t cur_head = 0, cur_n = 0, expected = 0;
  for (size_t i = 0; i < np; i++) {
    uint64_t e = pm[i], pfn = e & PM_PFN_MASK;
    if (!(e & PM_PRESENT) || pfn == 0) {
      hist_add(c, 0);  // not present (or PFN hidden): bucket 0
      continue;
    }
    if (!(cur_n && pfn >= cur_head && pfn < cur_head + cur_n)) cur_n = folio_pages_at(pfn, &cur_head);
    hist_add(c, cur_n * HB_PAGE);
    if (cur_n * HB_PAGE == k_cfg[ci].bytes) expected++;
  }
  close(g_kpf_fd);
  big_free(pm, np * 8);
  c->ahp = anon_huge_pages_bytes();
  c->frac = (double)expected / (double)np;
  c->ok = c->frac >= 0.99;
  if (k_cfg[ci].pmd) c->ok = c->ok && (double)c->ahp >= 0.99 * (double)size;
  if (k_cfg[ci].pte_remap) c->ok = c->ok && c->ahp == 0;
  c->done = true;
  if (!c->ok) {
    char h[512] = "";
    for (int i = 0; i < c->nh; i++) {
      size_t l = strlen(h);
      snprintf(h + l, sizeof h - l, " %llu:%llu", (unsigned long long)c->h_size[i], (unsigned long long)c->h_pages[i]);
    }
    fprintf(stderr,
            "hostbench: WARNING: folio check failed for %s: %.4f of the pages in %llu-byte folios, "
            "AnonHugePages %lld bytes; histogram (bytes:pages)%s\n",
            folio_cfg_names[ci], c->frac, (unsigned long long)k_cfg[ci].bytes, (long long)c->ahp, h);
  }
}

// ------------------------------------------------------------------ scenarios
#define POPULATE_ATTEMPTS 3
static void run_config(int ci, int rep) {
  cfgres_t *R = &g_res[ci];
  opres_t *O = R->ops;
  const size_t size = g_params.size_bytes;
  const bool st = rep == 0;  // counters on the first repeat only
  const int64_t n2m = (int64_t)(size / HB_PMD);
  meas_t m;
  int pfd[2];
  pid_t pid;

  // basic: populate, write_nofault, munmap. A populate that a reporting pass overlapped
  // is dropped and redone (up to POPULATE_ATTEMPTS in all).
  char *p;
  for (int attempt = 1;; attempt++) {
    bool overlap;
    if (st) stats_prewarm(size);
    p = map_populate(ci, size, &m, &O[OP_POPULATE], st, &overlap);
    if (!overlap) break;
    if (attempt == POPULATE_ATTEMPTS) {
      R->populate_overlapped++;
      break;
    }
    O[OP_POPULATE].n--;
    R->populate_retries++;
    xmunmap(p, size);
  }
  op_begin(&m, st);
  touch(p, size);
  op_end(&m, &O[OP_WRITE_NOFAULT], 1);
  if (rep == 0) folio_check(ci, p, size, &R->check);
  op_begin(&m, st);
  int rc = munmap(p, size);
  op_end(&m, &O[OP_MUNMAP], 1);
  if (rc) die("munmap failed: %s", strerror(errno));

  // dontneed
  p = map_populate(ci, size, &m, NULL, false, NULL);
  op_begin(&m, st);
  rc = madvise(p, size, MADV_DONTNEED);
  op_end(&m, &O[OP_DONTNEED], 1);
  if (rc) die("madvise(MADV_DONTNEED) failed: %s", strerror(errno));
  xmunmap(p, size);

  // fork_exit: fork, child_exit, cow_reuse
  p = map_populate(ci, size, &m, NULL, false, NULL);
  g_measured = p, g_measured_len = size;
  xpipe(pfd);
  op_begin(&m, st);
  pid = fork_child(pfd);
  op_end(&m, &O[OP_FORK], 1);
  close(pfd[0]);
  op_begin(&m, st);
  release(pfd[1]);
  reap(pid);
  op_end(&m, &O[OP_CHILD_EXIT], 1);
  close(pfd[1]);
  op_begin(&m, st);
  touch(p, size);
  op_end(&m, &O[OP_COW_REUSE], 1);
  xmunmap(p, size);

  // fork_munmap
  p = map_populate(ci, size, &m, NULL, false, NULL);
  g_measured = p, g_measured_len = size;
  xpipe(pfd);
  pid = fork_child(pfd);
  close(pfd[0]);
  op_begin(&m, st);
  rc = munmap(p, size);
  op_end(&m, &O[OP_MUNMAP_AFTER_FORK], 1);
  if (rc) die("munmap failed: %s", strerror(errno));
  release(pfd[1]);
  reap(pid);
  close(pfd[1]);

  // fork_cow
  p = map_populate(ci, size, &m, NULL, false, NULL);
  g_measured = p, g_measured_len = size;
  xpipe(pfd);
  pid = fork_child(pfd);
  close(pfd[0]);
  op_begin(&m, st);
  touch(p, size);
  op_end(&m, &O[OP_COW_WRITE], 1);
  release(pfd[1]);
  reap(pid);
  close(pfd[1]);
  xmunmap(p, size);

  // remap: mprotect_ro_4k, mprotect_rw_4k, dontneed_4k (one call per 2 MiB)
  p = map_populate(ci, size, &m, NULL, false, NULL);
  rc = 0;
  op_begin(&m, st);
  for (size_t off = 0; off < size; off += HB_PMD) rc |= mprotect(p + off, HB_PAGE, PROT_READ);
  op_end(&m, &O[OP_MPROTECT_RO_4K], n2m);
  op_begin(&m, st);
  for (size_t off = 0; off < size; off += HB_PMD) rc |= mprotect(p + off, HB_PAGE, PROT_READ | PROT_WRITE);
  op_end(&m, &O[OP_MPROTECT_RW_4K], n2m);
  op_begin(&m, st);
  for (size_t off = 0; off < size; off += HB_PMD) rc |= madvise(p + off, HB_PAGE, MADV_DONTNEED);
  op_end(&m, &O[OP_DONTNEED_4K], n2m);
  if (rc) die("mprotect/madvise on 4 KiB failed: %s", strerror(errno));
  xmunmap(p, size);
}

bool folio_run(void) {
  const int reps = g_params.repeats;
  for (int ci = 0; ci < FOLIO_NCFG; ci++) {
    if (!(g_params.folio_mask & (1u << ci))) continue;
    g_res[ci].run = true;
    for (int o = 0; o < NOPS; o++) {
      opres_t *r = &g_res[ci].ops[o];
      r->ns = calloc((size_t)reps, sizeof(int64_t));
      r->cpu = calloc((size_t)reps, sizeof(int64_t));
      r->flt = calloc((size_t)reps, sizeof(int64_t));
      if (!r->ns || !r->cpu || !r->flt) die("out of memory");
    }
  }
  pin_self(1);  // children pin themselves to CPU 0
  for (int rep = 0; rep < reps; rep++) {
    for (int ci = 0; ci < FOLIO_NCFG; ci++) {
      if (!g_res[ci].run) continue;
      double t0 = elapsed_s();
      thp_select(k_cfg[ci].kb);
      int retried = g_res[ci].populate_retries;
      run_config(ci, rep);
      retried = g_res[ci].populate_retries - retried;
      opres_t *O = g_res[ci].ops;
      int i = rep;
      progress("folio repeat %d/%d %-6s populate %.1f ms%s, munmap %.1f ms, fork %.1f ms, cow_write %.1f ms%s (%.1f s)",
               rep + 1, reps, folio_cfg_names[ci], O[OP_POPULATE].ns[i] / 1e6,
               retried ? " (redone: reporting pass)" : "", O[OP_MUNMAP].ns[i] / 1e6,
               O[OP_FORK].ns[i] / 1e6, O[OP_COW_WRITE].ns[i] / 1e6,
               rep == 0 ? (g_res[ci].check.ok ? ", folio check ok" : ", FOLIO CHECK FAILED") : "",
               elapsed_s() - t0);
    }
  }
  bool all = true;
  for (int ci = 0; ci < FOLIO_NCFG; ci++)
    if (g_res[ci].run) all = all && g_res[ci].check.ok;
  return all;
}

static void emit_op(json_t *j, const opres_t *r) {
  j_obj(j);
  j_key(j, "samples_ns");
  j_arr(j);
  for (int i = 0; i < r->n; i++) j_int(j, r->ns[i]);
  j_arr_end(j);
  j_kint(j, "median_ns", median_i64(r->ns, r->n));
  j_kint(j, "min_ns", min_i64(r->ns, r->n));
  j_kint(j, "cpu_ns_median", median_i64(r->cpu, r->n));
  j_kint(j, "minflt_median", median_i64(r->flt, r->n));
  j_kint(j, "calls", r->calls);
  kvlist_t empty = {0, NULL, NULL};
  j_kvlist(j, "vmstat", r->have_stats ? &r->vm : &empty);
  j_kvlist(j, "mthp", r->have_stats ? &r->mt : &empty);
  j_obj_end(j);
}

void folio_emit(json_t *j) {
  j_obj(j);
  for (int ci = 0; ci < FOLIO_NCFG; ci++) {
    const cfgres_t *R = &g_res[ci];
    if (!R->run) continue;
    j_key(j, folio_cfg_names[ci]);
    j_obj(j);
    j_kint(j, "folio_bytes", (int64_t)k_cfg[ci].bytes);
    j_kbool(j, "pmd_mapped", k_cfg[ci].pmd);
    j_kint(j, "populate_retries", R->populate_retries);
    j_kint(j, "populate_overlapped", R->populate_overlapped);
    j_key(j, "check");
    j_obj(j);
    j_kint(j, "expected_bytes", (int64_t)k_cfg[ci].bytes);
    j_key(j, "histogram");
    j_obj(j);
    for (int i = 0; i < R->check.nh; i++) {
      char k[32];
      snprintf(k, sizeof k, "%llu", (unsigned long long)R->check.h_size[i]);
      j_kint(j, k, (int64_t)R->check.h_pages[i]);
    }
    j_obj_end(j);
    j_kint(j, "anon_huge_pages_bytes", R->check.ahp);
    j_knum(j, "fraction_expected", R->check.frac);
    j_kbool(j, "ok", R->check.ok);
    j_obj_end(j);
    j_key(j, "ops");
    j_obj(j);
    for (int o = 0; o < NOPS; o++) {
      j_key(j, k_op_names[o]);
      emit_op(j, &R->ops[o]);
    }
    j_obj_end(j);
    j_obj_end(j);
  }
  j_obj_end(j);
}
