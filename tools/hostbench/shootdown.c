// The shootdown family: thread B (CPU 1) unmaps / mprotects / MADV_DONTNEEDs N pages
// of one 2 MiB block while thread A of the same mm sits on CPU 0, either spinning in
// user space ("running") or blocked in FUTEX_WAIT so CPU 0 idles with the mm lazily
// loaded ("lazy"). TLB-shootdown IPIs are counted from the TLB: row of /proc/interrupts.
#include "hostbench.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NPAGECOUNTS 8
static const int k_pages[NPAGECOUNTS] = {1, 2, 16, 32, 33, 34, 64, 512};
#define WARMUP 3

enum { MODE_RUNNING, MODE_LAZY, MODE_EXIT };
static const char *const k_mode_names[2] = {"running", "lazy"};
// shared_table: the target is alone in its VMA, a keeper page shares its PTE table;
// alone: alone in its 2 MiB block (munmap frees the PTE table);
// split: the target is the head of a populated 2 MiB mapping, so munmap and mprotect
// split that VMA (and the mprotect restore / the re-mmap merge it back).
#define NLAYOUTS 3
static const char *const k_layout_names[NLAYOUTS] = {"shared_table", "alone", "split"};

static _Atomic int g_mode = MODE_LAZY;
static volatile int g_spin;              // A spins while this is 1
static _Atomic uint32_t g_wake_seq;      // futex word A sleeps on
static _Atomic uint32_t g_ack_seq;       // last wake_seq A has seen
static _Atomic pid_t g_a_tid;
static _Atomic bool g_a_fifo;  // A spins under SCHED_FIFO in running mode
static pthread_t g_thread_a;

static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val) {
  return syscall(SYS_futex, (uint32_t *)uaddr, op, val, NULL, NULL, 0);
}

static void *thread_a(void *arg) {
  (void)arg;
  pin_self(0);
  atomic_store(&g_a_tid, (pid_t)syscall(SYS_gettid));
  for (;;) {
    uint32_t s = atomic_load(&g_wake_seq);
    int mode = atomic_load(&g_mode);
    if (mode == MODE_EXIT) break;
    if (mode != MODE_RUNNING) atomic_store(&g_ack_seq, s);
    if (mode == MODE_RUNNING) {
      // SCHED_FIFO while spinning: with autogroup, nice does not hold CPU 0 against a
      // task of another session (a build gets half of the CPU). RT throttling / the
      // fair server still leave 5 % to normal tasks; failures just keep SCHED_OTHER.
      struct sched_param rt = {.sched_priority = 1}, normal = {.sched_priority = 0};
      bool fifo = pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) == 0;
      atomic_store(&g_a_fifo, fifo);
      atomic_store(&g_ack_seq, s);
      while (g_spin) {
      }
      if (fifo) pthread_setschedparam(pthread_self(), SCHED_OTHER, &normal);
      continue;
    }
    futex(&g_wake_seq, FUTEX_WAIT_PRIVATE, s);
  }
  return NULL;
}

static void spin_ns(int64_t ns) {
  int64_t end = now_ns() + ns;
  while (now_ns() < end) {
  }
}

static char a_state(void) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)atomic_load(&g_a_tid));
  if (read_small(path, buf, sizeof buf) <= 0) return '?';
  char *p = strrchr(buf, ')');
  return p && p[1] ? p[2] : '?';
}

// Wakes A and waits until it has run on CPU 0 and blocked again: CPU 0 is then idle
// with our mm lazily loaded (a flush IPI to a lazy CPU switches it to init_mm, so the
// lazy state is re-established before every measured call).
static void lazy_rearm(void) {
  uint32_t s = atomic_fetch_add(&g_wake_seq, 1) + 1;
  futex(&g_wake_seq, FUTEX_WAKE_PRIVATE, 1);
  while (atomic_load(&g_ack_seq) != s) {
  }
  int64_t deadline = now_ns() + 20000000;  // 20 ms: A may have been preempted before sleeping
  while (a_state() != 'S' && now_ns() < deadline) {
  }
  spin_ns(20000);  // let the context switch to idle complete
}

static void set_mode(int mode) {
  if (mode == MODE_RUNNING) g_spin = 1;
  atomic_store(&g_mode, mode);
  if (mode != MODE_RUNNING) g_spin = 0;
  uint32_t s = atomic_fetch_add(&g_wake_seq, 1) + 1;
  futex(&g_wake_seq, FUTEX_WAKE_PRIVATE, 1);
  if (mode == MODE_EXIT) return;
  while (atomic_load(&g_ack_seq) != s) {
  }
  if (mode == MODE_LAZY) lazy_rearm();
}

// ------------------------------------------------------------------ results
typedef struct {
  const char *op;
  int pages, remote, layout, iterations, attempts;
  int64_t median, min;
  int nsamp;
  double ipis_per_call;
  double remote_cpu_fraction;  // A's CPU time / wall time over the loop
  int64_t steal_ms[2];         // /proc/stat steal of CPUs 0 and 1 over the loop
  int ncpu;
  int64_t tlb_delta[HB_MAXCPU];
  kvlist_t vm;
} point_t;

static point_t *g_points;
static int g_npoints;
static clockid_t g_a_clock;

// ------------------------------------------------------------------ arena
static char *g_block;  // the 2 MiB-aligned block under test, PROT_NONE neighbours
static char *g_keeper;
static bool g_have_tlb_vmstat;

static void arena_init(void) {
  size_t len = 8 * HB_PMD;
  char *raw = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) die("mmap of the arena failed: %s", strerror(errno));
  char *a0 = (char *)(((uintptr_t)raw + HB_PMD - 1) & ~(uintptr_t)(HB_PMD - 1));
  g_block = a0 + 2 * HB_PMD;  // at least 2 MiB of reservation on each side
}

static int g_layout;

static void layout_setup(int layout) {
  if (munmap(g_block, HB_PMD) != 0) die("munmap of the arena block failed: %s", strerror(errno));
  g_keeper = NULL;
  g_layout = layout;
  if (layout == 2) {  // split: one populated 2 MiB VMA; targets are its head
    if (mmap(g_block, HB_PMD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
      die("mmap of the split block failed: %s", strerror(errno));
    for (size_t off = 0; off < HB_PMD; off += HB_PAGE) ((volatile char *)g_block)[off] = 1;
  }
  if (layout == 0) {  // shared_table: a populated keeper page at the block's last page
    g_keeper = mmap(g_block + HB_PMD - HB_PAGE, HB_PAGE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (g_keeper == MAP_FAILED) die("mmap of the keeper page failed: %s", strerror(errno));
    madvise(g_keeper, HB_PAGE, MADV_DONTFORK);  // distinct vm_flags: never merges with the target
    *(volatile char *)g_keeper = 1;
  }
}

static void layout_teardown(void) { munmap(g_block, HB_PMD); }

static void map_target(int n) {
  // split: the target is already the head of the block's VMA, except for munmap, which
  // maps it again (MAP_FIXED; it merges with the rest of the block).
  void *p = mmap(g_block, (size_t)n * HB_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) die("mmap of %d pages failed: %s", n, strerror(errno));
}

static void touch_n(int n) {
  volatile char *v = g_block;
  for (int i = 0; i < n; i++) v[(size_t)i * HB_PAGE] = 1;
}

// ------------------------------------------------------------------ counting
static void steal_read(int64_t out[2]) {  // milliseconds
  static char buf[16384];
  out[0] = out[1] = 0;
  if (read_small("/proc/stat", buf, sizeof buf) <= 0) return;
  long hz = sysconf(_SC_CLK_TCK);
  for (int c = 0; c < 2; c++) {
    char key[16];
    snprintf(key, sizeof key, "\ncpu%d ", c);
    char *p = strstr(buf, key);
    if (!p) continue;
    p += strlen(key);
    long long v[8] = {0};
    for (int i = 0; i < 8; i++) v[i] = strtoll(p, &p, 10);
    out[c] = v[7] * 1000 / (hz > 0 ? hz : 100);
  }
}

static int64_t a_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(g_a_clock, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct {
  int64_t *ns;
  int64_t tlb[HB_MAXCPU];
  int ncpu;
  statvals_t vm0, vmsum;
  // the whole loop
  int64_t w0, w1, a0, a1, st0[2], st1[2];
} acc_t;

static void acc_init(acc_t *a, int iters) {
  memset(a, 0, sizeof *a);
  a->ns = calloc((size_t)iters, sizeof(int64_t));
  if (!a->ns) die("out of memory");
}

static void loop_begin(acc_t *a) {
  steal_read(a->st0);
  a->a0 = a_cpu_ns();
  a->w0 = now_ns();
}

static void loop_end(acc_t *a) {
  a->w1 = now_ns();
  a->a1 = a_cpu_ns();
  steal_read(a->st1);
}

// Counters around one call (mprotect) or one loop (munmap, dontneed); they add up.
static void snap_begin(acc_t *a, int64_t *t) {
  if (g_have_tlb_vmstat) vmstat_read(&a->vm0);
  a->ncpu = tlb_row_read(t);
}

static void snap_end(acc_t *a, const int64_t *t0) {
  int64_t t1[HB_MAXCPU];
  int n = tlb_row_read(t1);
  for (int c = 0; c < n; c++) a->tlb[c] += t1[c] - t0[c];
  if (g_have_tlb_vmstat) {
    static statvals_t now;
    vmstat_read(&now);
    for (int i = 0; i < now.n; i++) a->vmsum.v[i] += now.v[i] - a->vm0.v[i];
    a->vmsum.n = now.n;
  }
}

static void make_point(point_t *pt, const char *op, int pages, int remote, int layout, acc_t *a) {
  const int iters = g_params.iterations;
  memset(pt, 0, sizeof *pt);
  pt->op = op;
  pt->pages = pages;
  pt->remote = remote;
  pt->layout = layout;
  pt->iterations = iters;
  pt->attempts = 1;
  pt->median = median_i64(a->ns, iters);
  pt->min = min_i64(a->ns, iters);
  pt->nsamp = iters;
  pt->ncpu = a->ncpu;
  memcpy(pt->tlb_delta, a->tlb, sizeof a->tlb);
  pt->ipis_per_call = (double)a->tlb[0] / iters;
  pt->remote_cpu_fraction = a->w1 > a->w0 ? (double)(a->a1 - a->a0) / (double)(a->w1 - a->w0) : 0;
  pt->steal_ms[0] = a->st1[0] - a->st0[0];
  pt->steal_ms[1] = a->st1[1] - a->st0[1];
  if (g_have_tlb_vmstat) {
    static statvals_t zero;
    zero.n = a->vmsum.n;
    vmstat_delta(&pt->vm, &zero, &a->vmsum, "nr_tlb_");
  }
  free(a->ns);
}

// Each returns its points (1, or 2 for mprotect) in out[].
static int run_munmap(int n, int remote, int layout, point_t *out) {
  const int iters = g_params.iterations;
  static acc_t a;
  acc_init(&a, iters);
  int64_t t0[HB_MAXCPU];
  for (int i = -WARMUP; i < iters; i++) {
    map_target(n);
    touch_n(n);
    if (i == 0) {
      snap_begin(&a, t0);
      loop_begin(&a);
    }
    if (remote == MODE_LAZY) lazy_rearm();
    int64_t s = now_ns();
    int rc = munmap(g_block, (size_t)n * HB_PAGE);
    int64_t e = now_ns();
    if (rc) die("munmap failed: %s", strerror(errno));
    if (i >= 0) a.ns[i] = e - s;
  }
  loop_end(&a);
  snap_end(&a, t0);
  make_point(&out[0], "munmap", n, remote, layout, &a);
  return 1;
}

static int run_dontneed(int n, int remote, int layout, point_t *out) {
  const int iters = g_params.iterations;
  static acc_t a;
  acc_init(&a, iters);
  int64_t t0[HB_MAXCPU];
  if (g_layout != 2) map_target(n);
  for (int i = -WARMUP; i < iters; i++) {
    touch_n(n);
    if (i == 0) {
      snap_begin(&a, t0);
      loop_begin(&a);
    }
    if (remote == MODE_LAZY) lazy_rearm();
    int64_t s = now_ns();
    int rc = madvise(g_block, (size_t)n * HB_PAGE, MADV_DONTNEED);
    int64_t e = now_ns();
    if (rc) die("madvise(MADV_DONTNEED) failed: %s", strerror(errno));
    if (i >= 0) a.ns[i] = e - s;
  }
  loop_end(&a);
  snap_end(&a, t0);
  if (g_layout != 2) munmap(g_block, (size_t)n * HB_PAGE);
  make_point(&out[0], "dontneed", n, remote, layout, &a);
  return 1;
}

// mprotect_ro and mprotect_rw alternate, so their IPIs are counted around each call.
static int run_mprotect(int n, int remote, int layout, point_t *out) {
  const int iters = g_params.iterations;
  static acc_t ro, rw;
  acc_init(&ro, iters);
  acc_init(&rw, iters);
  if (g_layout != 2) map_target(n);
  touch_n(n);
  for (int i = -WARMUP; i < iters; i++) {
    if (i == 0) loop_begin(&ro);
    for (int k = 0; k < 2; k++) {
      acc_t *a = k == 0 ? &ro : &rw;
      int prot = k == 0 ? PROT_READ : PROT_READ | PROT_WRITE;
      int64_t t0[HB_MAXCPU];
      if (k == 0) touch_n(n);  // TLB entries present on CPU 1, PTEs dirty and writable
      if (i >= 0) snap_begin(a, t0);
      if (remote == MODE_LAZY) lazy_rearm();
      int64_t s = now_ns();
      int rc = mprotect(g_block, (size_t)n * HB_PAGE, prot);
      int64_t e = now_ns();
      if (rc) die("mprotect failed: %s", strerror(errno));
      if (i >= 0) {
        snap_end(a, t0);
        a->ns[i] = e - s;
      }
    }
  }
  loop_end(&ro);
  rw.w0 = ro.w0, rw.w1 = ro.w1, rw.a0 = ro.a0, rw.a1 = ro.a1;  // one loop for both
  memcpy(rw.st0, ro.st0, sizeof ro.st0);
  memcpy(rw.st1, ro.st1, sizeof ro.st1);
  if (g_layout != 2) munmap(g_block, (size_t)n * HB_PAGE);
  make_point(&out[0], "mprotect_ro", n, remote, layout, &ro);
  make_point(&out[1], "mprotect_rw", n, remote, layout, &rw);
  return 2;
}

// In "running" mode A must really be on CPU 0 for the whole loop: if the hypervisor
// descheduled vCPU 0 (or another task ran there), KVM's PV TLB flush skips the IPI.
// Such loops (A's CPU time < 98 % of the wall time) are retried, up to 5 attempts; the
// attempt with the highest fraction is kept.
#define MAX_ATTEMPTS 5
static void run_point(int op, int n, int remote, int layout) {
  point_t best[2], cur[2];
  int np = 0;
  for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    int k = op == 0 ? run_munmap(n, remote, layout, cur)
            : op == 1 ? run_mprotect(n, remote, layout, cur)
                      : run_dontneed(n, remote, layout, cur);
    if (attempt == 1 || cur[0].remote_cpu_fraction > best[0].remote_cpu_fraction) {
      memcpy(best, cur, sizeof cur);
      np = k;
    }
    for (int i = 0; i < np; i++) best[i].attempts = attempt;
    if (remote != MODE_RUNNING || best[0].remote_cpu_fraction >= 0.98) break;
  }
  if (remote == MODE_RUNNING && best[0].remote_cpu_fraction < 0.98)
    fprintf(stderr,
            "hostbench: WARNING: shootdown %s %d pages %s: thread A ran only %.0f%% of the loop on CPU 0 "
            "(steal %lld ms): CPU 0 ran another task or vCPU 0 was descheduled, so some flushes needed no "
            "IPI\n",
            best[0].op, n, k_layout_names[layout], 100 * best[0].remote_cpu_fraction, (long long)best[0].steal_ms[0]);
  for (int i = 0; i < np; i++) g_points[g_npoints++] = best[i];
}

void shootdown_run(void) {
  g_have_tlb_vmstat = vmstat_has_prefix("nr_tlb_");
  g_points = calloc(2 * NLAYOUTS * 4 * NPAGECOUNTS, sizeof(point_t));
  if (!g_points) die("out of memory");
  thp_select(0);  // order-0 pages only: N = 512 must not become a PMD THP
  pin_self(1);
  arena_init();
  g_spin = 0;
  atomic_store(&g_mode, MODE_LAZY);
  if (pthread_create(&g_thread_a, NULL, thread_a, NULL) != 0) die("pthread_create failed");
  while (!atomic_load(&g_a_tid)) {
  }
  if (pthread_getcpuclockid(g_thread_a, &g_a_clock) != 0) die("pthread_getcpuclockid failed");
  for (int remote = 0; remote < 2; remote++) {
    set_mode(remote == 0 ? MODE_RUNNING : MODE_LAZY);
    if (remote == 0 && !atomic_load(&g_a_fifo))
      fprintf(stderr, "hostbench: WARNING: SCHED_FIFO for the spinning thread refused; it runs as SCHED_OTHER\n");
    for (int layout = 0; layout < NLAYOUTS; layout++) {
      for (int op = 0; op < 3; op++) {
        double t0 = elapsed_s();
        int first = g_npoints;
        layout_setup(layout);
        for (int k = 0; k < NPAGECOUNTS; k++) {
          int n = k_pages[k];
          if (layout != 1 && n > 511) n = 511;  // the keeper / the split's rest holds the last page
          run_point(op, n, remote, layout);
        }
        layout_teardown();
        char ipis[256] = "";
        for (int i = first; i < g_npoints; i++) {
          size_t l = strlen(ipis);
          snprintf(ipis + l, sizeof ipis - l, " %d:%.2f", g_points[i].pages, g_points[i].ipis_per_call);
        }
        static const char *const opn[3] = {"munmap", "mprotect", "dontneed"};
        progress("shootdown %-7s %-12s %-8s ipis/call by pages%s (%.1f s)", k_mode_names[remote],
                 k_layout_names[layout], opn[op], ipis, elapsed_s() - t0);
      }
    }
  }
  set_mode(MODE_EXIT);
  pthread_join(g_thread_a, NULL);
}

void shootdown_emit(json_t *j) {
  j_arr(j);
  for (int i = 0; i < g_npoints; i++) {
    const point_t *p = &g_points[i];
    j_obj(j);
    j_kstr(j, "op", p->op);
    j_kint(j, "pages", p->pages);
    j_kstr(j, "remote", k_mode_names[p->remote]);
    j_kstr(j, "layout", k_layout_names[p->layout]);
    j_kint(j, "iterations", p->iterations);
    j_key(j, "per_call_ns");
    j_obj(j);
    j_kint(j, "median", p->median);
    j_kint(j, "min", p->min);
    j_kint(j, "samples", p->nsamp);
    j_obj_end(j);
    j_knum(j, "ipis_per_call", p->ipis_per_call);
    j_key(j, "tlb_row_delta");
    j_arr(j);
    for (int c = 0; c < p->ncpu; c++) j_int(j, p->tlb_delta[c]);
    j_arr_end(j);
    j_kvlist(j, "vmstat", &p->vm);
    j_knum(j, "remote_cpu_fraction", (double)(int64_t)(p->remote_cpu_fraction * 10000 + 0.5) / 10000);
    j_key(j, "steal_ms");
    j_arr(j);
    j_int(j, p->steal_ms[0]);
    j_int(j, p->steal_ms[1]);
    j_arr_end(j);
    j_kint(j, "attempts", p->attempts);
    j_obj_end(j);
  }
  j_arr_end(j);
}
