// The primitives family: user-space measurements, on CPU 1, of the hardware figures the
// simulator's cache / memory model needs (load latency by working-set size, memory-level
// parallelism, streaming and page-stride costs, clearing and copying a cold page, TLB
// misses) and of two kernel costs (a system call, an order-0 anonymous fault).
// Data-cache buffers are THP-backed (hugepages-2048kB "always" plus MADV_HUGEPAGE) so
// TLB misses stay out of them; the *_4k_pages figures use 4 KiB pages on purpose.
#include "hostbench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PRIM_REPS 5
#define PRIM_CPU 1
#define GIB (1UL << 30)
#define LINE 64UL
#define EVICT_BYTES (256UL << 20)
#define PF_BYTES (256UL << 20)

typedef struct {
  bool have;
  double median, min;  // ns per operation
} fig_t;

// 2MiB is an extension: in the reference VM the part of the 32 MiB L3 that one vCPU
// gets ends between 2 and 3 MiB, so 4MiB already measures DRAM there.
#define NCHASE 6
static const struct {
  const char *key;
  size_t bytes;
} k_chase[NCHASE] = {{"16KiB", 16UL << 10}, {"256KiB", 256UL << 10}, {"2MiB", 2UL << 20},
                     {"4MiB", 4UL << 20},   {"64MiB", 64UL << 20},   {"1GiB", GIB}};

static struct {
  bool run;
  fig_t chase[NCHASE], chase4k, indep, seq, stride, stride4k, clear, copy, sys, pf, atomic, xchg;
  const char *clear_insn, *copy_insn;
  double thp_fraction;   // AnonHugePages gained by the THP buffers / their size
  double pf_minflt;      // minor faults per page in the pagefault loop (expected 1)
  int64_t target_ns;     // time per repetition the adaptive loops aim at
} g;

static volatile uint64_t g_sink;  // results of the loops, so the compiler keeps them

static void fig_set(fig_t *f, const int64_t *ns, int n, double ops) {
  f->have = true;
  f->median = (double)median_i64(ns, n) / ops;
  f->min = (double)min_i64(ns, n) / ops;
}

static uint64_t rng_state = 0x243F6A8885A308D3ULL;  // fixed seed: the same permutations every run
static uint64_t rng_next(void) {  // xorshift64*
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1DULL;
}
static uint32_t rng_below(uint32_t n) { return (uint32_t)(((rng_next() >> 32) * (uint64_t)n) >> 32); }

// ------------------------------------------------------------------ buffers
// THP-backed: 2 MiB-aligned, MADV_HUGEPAGE, every 4 KiB page written (populated).
static char *thp_buf(size_t size) {
  char *p = map_aligned(size);
  if (madvise(p, size, MADV_HUGEPAGE) != 0) die("madvise(MADV_HUGEPAGE) failed: %s", strerror(errno));
  volatile char *v = p;
  for (size_t off = 0; off < size; off += HB_PAGE) v[off] = 1;
  return p;
}

static char *small_buf(size_t size) {  // 4 KiB pages (MADV_NOHUGEPAGE), populated
  char *p = big_alloc(size);
  volatile char *v = p;
  for (size_t off = 0; off < size; off += HB_PAGE) v[off] = 1;
  return p;
}

static char *g_evict;  // EVICT_BYTES, THP, only ever read
static void evict_caches(void) {
  const uint64_t *w = (const uint64_t *)g_evict;
  uint64_t s = 0;
  for (size_t i = 0; i < EVICT_BYTES / 8; i += LINE / 8) s += w[i];
  g_sink += s;
}

// ------------------------------------------------------------------ pointer chase
static uint32_t *g_idx;  // Sattolo scratch, one entry per slot of the largest chase
static size_t g_idx_n;

// A random single cycle through nslots slots (slot i at base + i * stride): one pointer at
// the start of each slot, to the next slot of the cycle.
static void chase_build(char *base, size_t nslots, size_t stride) {
  if (nslots > g_idx_n) die("chase of %zu slots exceeds the scratch array", nslots);
  for (size_t i = 0; i < nslots; i++) g_idx[i] = (uint32_t)i;
  for (size_t i = nslots - 1; i > 0; i--) {  // Sattolo: i -> idx[i] is one nslots-cycle
    uint32_t j = rng_below((uint32_t)i), t = g_idx[i];
    g_idx[i] = g_idx[j];
    g_idx[j] = t;
  }
  for (size_t i = 0; i < nslots; i++) *(char **)(base + i * stride) = base + (size_t)g_idx[i] * stride;
}

static void *chase(void *p, uint64_t n) {  // n a multiple of 8
  void **q = p;
  for (uint64_t i = 0; i < n; i += 8) {
    q = *q; q = *q; q = *q; q = *q;
    q = *q; q = *q; q = *q; q = *q;
  }
  return q;
}

// Loads per repetition so that one takes about g.target_ns (2^14 .. 2^27, multiple of 8).
static uint64_t chase_calibrate(void **p) {
  const uint64_t probe = 1 << 16;
  int64_t t0 = now_ns();
  *p = chase(*p, probe);
  int64_t dt = now_ns() - t0;
  double per = dt > 0 ? (double)dt / (double)probe : 1.0;
  double n = (double)g.target_ns / per;
  if (n < (1 << 14)) n = 1 << 14;
  if (n > (double)(1 << 27)) n = (double)(1 << 27);
  return ((uint64_t)n + 7) & ~(uint64_t)7;
}

static void chase_measure(fig_t *f, char *base, size_t nslots, size_t stride) {
  chase_build(base, nslots, stride);
  void *p = base;
  uint64_t warm = nslots < (1u << 20) ? nslots : (1u << 20);  // one lap, at most 2^20 loads
  p = chase(p, (warm + 7) & ~(uint64_t)7);
  uint64_t n = chase_calibrate(&p);
  int64_t ns[PRIM_REPS];
  for (int r = 0; r < PRIM_REPS; r++) {
    int64_t t0 = now_ns();
    p = chase(p, n);
    ns[r] = now_ns() - t0;
  }
  g_sink += (uintptr_t)p;
  fig_set(f, ns, PRIM_REPS, (double)n);
}

// ------------------------------------------------------------------ other loops
static uint64_t indep_read(const char *buf, uint64_t lines_log2, uint64_t i0, uint64_t n) {
  const uint64_t *w = (const uint64_t *)buf;
  uint64_t s = 0;
  for (uint64_t i = i0; i < i0 + n; i++) {  // the address depends on i only, never on a load
    uint64_t x = i * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ULL;
    s += w[(x >> (64 - lines_log2)) * (LINE / 8)];
  }
  return s;
}

static uint64_t seq_read(const char *buf, size_t size) {  // one 8-byte load per line
  const uint64_t *w = (const uint64_t *)buf;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i < size / 8; i += 4 * LINE / 8) {
    s0 += w[i];
    s1 += w[i + LINE / 8];
    s2 += w[i + 2 * LINE / 8];
    s3 += w[i + 3 * LINE / 8];
  }
  return s0 + s1 + s2 + s3;
}

static void page_stride_write(char *buf, size_t size, char val) {
  volatile char *v = buf;
  for (size_t off = 0; off < size; off += HB_PAGE) v[off] = val;
}

static void stride_measure(fig_t *f, char *buf, size_t size) {
  int64_t ns[PRIM_REPS];
  for (int r = 0; r < PRIM_REPS; r++) {
    evict_caches();
    int64_t t0 = now_ns();
    page_stride_write(buf, size, (char)(r + 2));
    ns[r] = now_ns() - t0;
  }
  fig_set(f, ns, PRIM_REPS, (double)(size / HB_PAGE));
}

// What the kernel's clear_page() / copy_page() use on x86-64 (arch/x86/include/asm/page_64.h,
// arch/x86/lib/clear_page_64.S, copy_page_64.S): clear_page_erms (rep stosb) with ERMS,
// else clear_page_rep (rep stosq) with REP_GOOD, else an unrolled loop; copy_page is rep
// movsq with REP_GOOD, else an unrolled loop (there is no movsb variant).
enum { K_LOOP, K_REP_Q, K_REP_B };
static int g_clear_kind, g_copy_kind;

static void clear_4k(char *dst) {
#if defined(__x86_64__)
  if (g_clear_kind == K_REP_B) {
    size_t n = HB_PAGE;
    __asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(0) : "memory");
    return;
  }
  if (g_clear_kind == K_REP_Q) {
    size_t n = HB_PAGE / 8;
    __asm__ volatile("rep stosq" : "+D"(dst), "+c"(n) : "a"(0) : "memory");
    return;
  }
#endif
  memset(dst, 0, HB_PAGE);
}

static void copy_4k(char *dst, const char *src) {
#if defined(__x86_64__)
  if (g_copy_kind == K_REP_Q) {
    size_t n = HB_PAGE / 8;
    __asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return;
  }
#endif
  memcpy(dst, src, HB_PAGE);
}

static void syscall_measure(void) {
  const int n = 200000;
  int64_t ns[PRIM_REPS];
  for (int i = 0; i < 10000; i++) g_sink += (uint64_t)syscall(SYS_getppid);
  for (int r = 0; r < PRIM_REPS; r++) {
    int64_t t0 = now_ns();
    for (int i = 0; i < n; i++) g_sink += (uint64_t)syscall(SYS_getppid);
    ns[r] = now_ns() - t0;
  }
  fig_set(&g.sys, ns, PRIM_REPS, n);
}

// Locked read-modify-writes on a line in L1, each depending on the previous one: what
// the kernel pays per folio counter update (atomic_add_return, lock xadd) and per
// page-table entry cleared with xchg (ptep_get_and_clear).
static void atomic_measure(void) {
  const int n = 4000000;
  static volatile uint64_t word __attribute__((aligned(64)));
  int64_t ns[PRIM_REPS];
  for (int r = 0; r < PRIM_REPS; r++) {
    int64_t t0 = now_ns();
    uint64_t v = 1;
    for (int i = 0; i < n; i++) v = __atomic_add_fetch(&word, v & 1, __ATOMIC_SEQ_CST);
    ns[r] = now_ns() - t0;
    g_sink += v;
  }
  fig_set(&g.atomic, ns, PRIM_REPS, n);
  for (int r = 0; r < PRIM_REPS; r++) {
    int64_t t0 = now_ns();
    uint64_t v = 1;
    for (int i = 0; i < n; i++) v = __atomic_exchange_n(&word, v + 1, __ATOMIC_SEQ_CST);
    ns[r] = now_ns() - t0;
    g_sink += v;
  }
  fig_set(&g.xchg, ns, PRIM_REPS, n);
}

// Order-0 anonymous faults: each repetition warms up (maps, touches and unmaps the same
// size, as the folio family does, so the faults reuse just-freed guest pages), then
// touches every page of a fresh mapping.
static void pagefault_measure(void) {
  thp_select(0);
  const size_t np = PF_BYTES / HB_PAGE;
  int64_t ns[PRIM_REPS], flt = 0;
  for (int r = 0; r < PRIM_REPS; r++) {
    big_free(small_buf(PF_BYTES), PF_BYTES);  // warm-up
    char *p = big_alloc(PF_BYTES);
    volatile char *v = p;
    int64_t f0 = thread_minflt(), t0 = now_ns();
    for (size_t off = 0; off < PF_BYTES; off += HB_PAGE) v[off] = 1;
    ns[r] = now_ns() - t0;
    flt += thread_minflt() - f0;
    big_free(p, PF_BYTES);
  }
  fig_set(&g.pf, ns, PRIM_REPS, (double)np);
  g.pf_minflt = (double)flt / PRIM_REPS / (double)np;
  if (g.pf_minflt < 0.99 || g.pf_minflt > 1.01)
    fprintf(stderr, "hostbench: WARNING: pagefault loop took %.3f minor faults per page, expected 1\n", g.pf_minflt);
}

static void cold_pages_measure(fig_t *f, char *dst, const char *src, size_t size) {
  int64_t ns[PRIM_REPS];
  for (int r = 0; r < PRIM_REPS; r++) {
    evict_caches();
    int64_t t0 = now_ns();
    if (src)
      for (size_t off = 0; off < size; off += HB_PAGE) copy_4k(dst + off, src + off);
    else
      for (size_t off = 0; off < size; off += HB_PAGE) clear_4k(dst + off);
    ns[r] = now_ns() - t0;
  }
  fig_set(f, ns, PRIM_REPS, (double)(size / HB_PAGE));
}

static void report(const char *what, const fig_t *f, double t0) {
  progress("primitives %-28s median %9.2f ns, min %9.2f ns (%.1f s)", what, f->median, f->min, elapsed_s() - t0);
}

void primitives_run(void) {
  g.run = true;
  g.target_ns = g_params.quick ? 10000000 : 50000000;
  g_clear_kind = cpu_flag("erms") ? K_REP_B : cpu_flag("rep_good") ? K_REP_Q : K_LOOP;
  g_copy_kind = cpu_flag("rep_good") ? K_REP_Q : K_LOOP;
#if !defined(__x86_64__)
  g_clear_kind = g_copy_kind = K_LOOP;
#endif
  g.clear_insn = g_clear_kind == K_REP_B ? "rep stosb" : g_clear_kind == K_REP_Q ? "rep stosq" : "memset";
  g.copy_insn = g_copy_kind == K_REP_Q ? "rep movsq" : "memcpy";
  pin_self(PRIM_CPU);
  double t0 = elapsed_s();

  syscall_measure();
  report("syscall_ns (getppid)", &g.sys, t0);
  t0 = elapsed_s();
  atomic_measure();
  report("atomic_ns (lock xadd)", &g.atomic, t0);
  report("xchg_ns", &g.xchg, t0);
  t0 = elapsed_s();
  pagefault_measure();
  report("pagefault_ns", &g.pf, t0);

  // THP-backed buffers: A (1 GiB), the eviction buffer, the chase scratch array.
  t0 = elapsed_s();
  thp_select(2048);
  int64_t ahp0 = anon_huge_pages_bytes();
  char *a = thp_buf(GIB);
  g_evict = thp_buf(EVICT_BYTES);
  g.thp_fraction = (double)(anon_huge_pages_bytes() - ahp0) / (double)(GIB + EVICT_BYTES);
  if (g.thp_fraction < 0.99)
    fprintf(stderr, "hostbench: WARNING: only %.3f of the primitives' THP buffers are PMD-mapped\n", g.thp_fraction);
  g_idx_n = GIB / LINE;
  size_t idx_bytes = g_idx_n * sizeof(uint32_t);
  g_idx = (uint32_t *)thp_buf(idx_bytes);
  progress("primitives buffers: 1 GiB + 256 MiB THP-backed, %.3f PMD-mapped (%.1f s)", g.thp_fraction,
           elapsed_s() - t0);

  for (int k = 0; k < NCHASE; k++) {
    t0 = elapsed_s();
    chase_measure(&g.chase[k], a, k_chase[k].bytes / LINE, LINE);
    char what[64];
    snprintf(what, sizeof what, "chase_ns %s", k_chase[k].key);
    report(what, &g.chase[k], t0);
  }

  t0 = elapsed_s();
  {
    const uint64_t n = g_params.quick ? (1 << 20) : (1 << 23);
    int64_t ns[PRIM_REPS];
    g_sink += indep_read(a, 24, 0, n / 8);  // warm the loop; 2^24 lines = 1 GiB
    for (int r = 0; r < PRIM_REPS; r++) {
      int64_t s = now_ns();
      g_sink += indep_read(a, 24, (uint64_t)(r + 1) * n, n);
      ns[r] = now_ns() - s;
    }
    fig_set(&g.indep, ns, PRIM_REPS, (double)n);
  }
  report("independent_read_ns", &g.indep, t0);

  t0 = elapsed_s();
  {
    int64_t ns[PRIM_REPS];
    for (int r = 0; r < PRIM_REPS; r++) {
      evict_caches();
      int64_t s = now_ns();
      g_sink += seq_read(a, GIB);
      ns[r] = now_ns() - s;
    }
    fig_set(&g.seq, ns, PRIM_REPS, (double)(GIB / LINE));
  }
  report("seq_read_line_ns", &g.seq, t0);

  t0 = elapsed_s();
  stride_measure(&g.stride, a, GIB);
  report("page_stride_write_ns", &g.stride, t0);

  t0 = elapsed_s();
  cold_pages_measure(&g.clear, a, NULL, GIB);
  report("clear_page_cold_ns", &g.clear, t0);

  t0 = elapsed_s();
  big_free(g_idx, idx_bytes);  // (a THP mapping; munmap is all big_free does)
  char *b = thp_buf(GIB);
  cold_pages_measure(&g.copy, b, a, GIB);
  report("copy_page_cold_ns", &g.copy, t0);
  big_free(b, GIB);
  big_free(a, GIB);

  // 4 KiB pages: one line per page (offset 0), pages in random order.
  t0 = elapsed_s();
  char *c = small_buf(GIB);
  g_idx_n = GIB / HB_PAGE;
  idx_bytes = g_idx_n * sizeof(uint32_t);
  g_idx = (uint32_t *)big_alloc(idx_bytes);
  chase_measure(&g.chase4k, c, GIB / HB_PAGE, HB_PAGE);
  big_free(g_idx, idx_bytes);
  report("chase_4k_pages_ns", &g.chase4k, t0);
  t0 = elapsed_s();
  stride_measure(&g.stride4k, c, GIB);
  report("page_stride_write_4k_pages_ns", &g.stride4k, t0);
  big_free(c, GIB);
  big_free(g_evict, EVICT_BYTES);
  thp_restore_policy();
}

static double rounded(double x, double scale) {  // to the nearest 1 / scale
  double y = x * scale;
  return (double)(int64_t)(y < 0 ? y - 0.5 : y + 0.5) / scale;
}

static void emit_fig(json_t *j, const char *key, const fig_t *f) {
  j_key(j, key);
  j_obj(j);
  j_knum(j, "median", rounded(f->median, 100));
  j_knum(j, "min", rounded(f->min, 100));
  j_obj_end(j);
}

void primitives_emit(json_t *j) {
  j_obj(j);
  if (g.run) {
    j_kint(j, "cpu", PRIM_CPU);
    j_kint(j, "repetitions", PRIM_REPS);
    j_kstr(j, "clear_page_insn", g.clear_insn);
    j_kstr(j, "copy_page_insn", g.copy_insn);
    j_knum(j, "thp_buffer_pmd_fraction", rounded(g.thp_fraction, 10000));
    j_key(j, "chase_ns");
    j_obj(j);
    for (int k = 0; k < NCHASE; k++) emit_fig(j, k_chase[k].key, &g.chase[k]);
    j_obj_end(j);
    emit_fig(j, "chase_4k_pages_ns", &g.chase4k);
    emit_fig(j, "independent_read_ns", &g.indep);
    emit_fig(j, "seq_read_line_ns", &g.seq);
    emit_fig(j, "page_stride_write_ns", &g.stride);
    emit_fig(j, "page_stride_write_4k_pages_ns", &g.stride4k);
    emit_fig(j, "clear_page_cold_ns", &g.clear);
    emit_fig(j, "copy_page_cold_ns", &g.copy);
    emit_fig(j, "syscall_ns", &g.sys);
    emit_fig(j, "atomic_ns", &g.atomic);
    emit_fig(j, "xchg_ns", &g.xchg);
    emit_fig(j, "pagefault_ns", &g.pf);
    fig_t d = {true, g.pf.median - g.clear.median, g.pf.min - g.clear.min};
    emit_fig(j, "pagefault_minus_clear_ns", &d);
    j_knum(j, "pagefault_minflt_per_page", rounded(g.pf_minflt, 1000));
  }
  j_obj_end(j);
}
