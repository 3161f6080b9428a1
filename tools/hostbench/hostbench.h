// hostbench: measures the running Linux kernel's memory-management costs (folio
// sizes x fault/zap/fork/COW/mprotect paths, and TLB-shootdown IPIs) so tlbsim can
// be calibrated against real hardware. See docs/hostbench.md.
#ifndef HOSTBENCH_H
#define HOSTBENCH_H

#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define HB_PAGE 4096UL
#define HB_PMD (2UL << 20)
#define HB_MAXCPU 64

// ---------------------------------------------------------------- parameters
typedef struct {
  uint64_t size_bytes;
  int repeats;
  int iterations;
  bool fam_primitives, fam_folio, fam_shootdown;
  bool quick;
  unsigned folio_mask;  // bit i = folio config i selected (see folio.c)
  const char *out;      // NULL = stdout
  char *command;        // argv joined
} params_t;

extern params_t g_params;

// ---------------------------------------------------------------- util (sys.c)
int64_t now_ns(void);        // CLOCK_MONOTONIC
int64_t thread_cpu_ns(void); // CLOCK_THREAD_CPUTIME_ID
int64_t thread_minflt(void); // getrusage(RUSAGE_THREAD).ru_minflt
double elapsed_s(void);      // since program start
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Reads a small file (NUL-terminated); returns bytes read or -1. Uses open/read/close.
ssize_t read_small(const char *path, char *buf, size_t cap);
void *big_alloc(size_t bytes);  // private anon mmap, MADV_NOHUGEPAGE, zero-filled
void big_free(void *p, size_t bytes);
void pin_self(int cpu);
// MADV_NOHUGEPAGE on every private writable mapping of this process except
// [keep, keep + keep_len): the harness's own stack, data, heap and buffers fault in
// order-0 pages, so the system-wide THP counters (split_deferred) see only the
// measured mapping, even when a forked child and the parent copy-on-write them.
void own_memory_nohugepage(const void *keep, size_t keep_len);
bool cpu_flag(const char *name);  // the flag is in /proc/cpuinfo's "flags" (first CPU); hostbench.c
int64_t anon_huge_pages_bytes(void);  // AnonHugePages of /proc/self/smaps_rollup; folio.c
char *map_aligned(size_t size);  // private anon RW mapping, 2 MiB-aligned, no madvise; folio.c
int64_t median_i64(const int64_t *v, int n);
int64_t min_i64(const int64_t *v, int n);

// ---------------------------------------------------------------- THP sysfs state (sys.c)
#define THP_DIR "/sys/kernel/mm/transparent_hugepage"
typedef struct {
  int nsizes;
  int sizes_kb[32];  // hugepages-<N>kB directories that have an anon "enabled" file, ascending
} thp_info_t;
extern thp_info_t g_thp;

// Checks root, the files and /proc interfaces; on failure prints one line and exits 2.
void thp_preflight(void);
// Saves every value (must precede any write), installs the restoring signal handlers.
void thp_save_and_arm(void);
// Writes one value ("never", "always", a number) to THP_DIR/<rel>; dies on failure.
void thp_write(const char *rel, const char *value);
// Sets the anon THP policy: every size "never" except size_kb (0 = none) "always";
// the top-level "enabled" is "never".
void thp_select(int size_kb);
void thp_freeze_khugepaged(void);
// Writes back the saved "enabled" values (not khugepaged's), e.g. after a family.
void thp_restore_policy(void);
// Restores every saved value; returns true when a re-read matches what was saved.
bool thp_restore_and_verify(void);
int thp_saved_count(void);
const char *thp_saved_key(int i);    // e.g. "hugepages-64kB/enabled"
const char *thp_saved_value(int i);  // e.g. "never"
void install_fatal_handlers(void);   // restore + re-raise on fatal signals
extern pid_t g_main_pid;
extern char g_tmp_out[4096];  // --out's FILE.tmp until renamed (unlinked on failure)

// ---------------------------------------------------------------- counters (sys.c)
#define HB_MAXSTAT 1024
typedef struct {
  int n;
  int64_t v[HB_MAXSTAT];
} statvals_t;
typedef struct {
  int n;
  const char **keys;
  int64_t *d;
} kvlist_t;
void vmstat_init(void);
void vmstat_read(statvals_t *s);
bool vmstat_has_prefix(const char *prefix);
void mthp_init(void);
void mthp_read(statvals_t *s);
// Nonzero deltas b - a (vmstat: keys starting with prefix, NULL = all).
void vmstat_delta(kvlist_t *out, const statvals_t *a, const statvals_t *b, const char *prefix);
void mthp_delta(kvlist_t *out, const statvals_t *a, const statvals_t *b);
// The TLB: row of /proc/interrupts, per CPU; returns the number of CPU columns.
int tlb_row_read(int64_t *out);

// ---------------------------------------------------------------- JSON (json.c)
typedef struct {
  char *buf;
  size_t len, cap;
  int depth;
  bool first[64];
  bool in_array[64];
  bool array_has_obj[64];
  bool after_key;
} json_t;
void j_init(json_t *j);
void j_obj(json_t *j);
void j_obj_end(json_t *j);
void j_arr(json_t *j);
void j_arr_end(json_t *j);
void j_key(json_t *j, const char *k);
void j_str(json_t *j, const char *s);
void j_int(json_t *j, int64_t v);
void j_num(json_t *j, double v);
void j_bool(json_t *j, bool v);
void j_kstr(json_t *j, const char *k, const char *s);
void j_kint(json_t *j, const char *k, int64_t v);
void j_knum(json_t *j, const char *k, double v);
void j_kbool(json_t *j, const char *k, bool v);
void j_kvlist(json_t *j, const char *k, const kvlist_t *l);

// ---------------------------------------------------------------- families
#define FOLIO_NCFG 10
extern const char *const folio_cfg_names[FOLIO_NCFG];
int folio_cfg_index(const char *name);  // -1 if unknown
bool folio_run(void);                   // returns folio_checks_passed
void folio_emit(json_t *j);             // the "folio" object value
void primitives_run(void);
void primitives_emit(json_t *j);  // the "primitives" object value
void shootdown_run(void);
void shootdown_emit(json_t *j);  // the "shootdown" array value

#endif
