// The page cache (mm/filemap.c): every simulated file is a struct address_space
// whose pages are all cached. A file is N pages long, identified by a small id,
// and held in folios of one order (smaller ones where alignment, the end of the
// file or fragmentation forbid it). Reading from a backing device is not
// modelled: a file's contents are in memory from create() on, like a file that
// was just written or read.
//
// References: the page cache holds folio_nr_pages() references on each of its
// folios (__filemap_add_folio); every mapping adds its own. Files are never
// truncated or deleted; reclaim may drop clean folios from the cache (remove), and
// a later fault reads the page back (Kernel::page_cache_read → insert).
//
// Folio fields of a page-cache folio: kPgFile set, kPgAnon clear, mapping = file
// id, index = file page offset of the first page.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/addr.h"
#include "mm/phys_mem.h"

namespace tlbsim::mm {

class PageCache {
 public:
  explicit PageCache(PhysMem& pm) : m_pm(pm) {}
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  /**
   * create - a new file of @nr_pages pages, all in the page cache.
   * @nr_pages: length in pages, ≥ 1.
   * @folio_order: preferred folio order, 0..8; each folio is naturally aligned in
   *   file offset, and smaller orders are used at the end of the file or when no
   *   block of the preferred order is free.
   *
   * Return: the file id (≥ 0), or −ENOMEM with nothing allocated.
   * @allocated (out): pages allocated.
   */
  int64_t create(uint64_t nr_pages, unsigned folio_order, uint64_t* allocated);

  bool valid(int64_t file) const { return file >= 0 && static_cast<size_t>(file) < m_files.size(); }
  /// i_size in pages.
  uint64_t nr_pages(int64_t file) const { return m_files[static_cast<size_t>(file)].nr_pages; }
  size_t nr_files() const { return m_files.size(); }

  /// filemap_get_entry(): the frame caching page @index of @file (the folio is
  /// Folio::of that frame), Pfn() (0) when reclaim dropped it, or nullopt beyond
  /// the end of the file.
  std::optional<Pfn> lookup(int64_t file, uint64_t index) const {
    const File& f = m_files[static_cast<size_t>(file)];
    if (index >= f.nr_pages) return std::nullopt;
    return Pfn(f.pfn[index]);
  }

  /// __filemap_remove_folio(): pages [index, index + nr) are no longer cached (the
  /// caller drops the cache's references).
  void remove(int64_t file, uint64_t index, uint64_t nr) {
    File& f = m_files[static_cast<size_t>(file)];
    for (uint64_t i = 0; i < nr; ++i) f.pfn[index + i] = 0;
  }
  /// __filemap_add_folio(): the folio at @head caches [index, index + nr).
  void insert(int64_t file, uint64_t index, Pfn head, uint64_t nr) {
    File& f = m_files[static_cast<size_t>(file)];
    for (uint64_t i = 0; i < nr; ++i) f.pfn[index + i] = head.value() + i;
  }

  /// Calls fn(file, head) for every cached folio, in file order.
  template <class Fn>
  void for_each_folio(Fn fn) const {
    for (size_t id = 0; id < m_files.size(); ++id) {
      const File& f = m_files[id];
      for (uint64_t i = 0; i < f.nr_pages;) {
        if (!f.pfn[i]) {
          ++i;
          continue;
        }
        const Pfn head(f.pfn[i]);
        fn(static_cast<int64_t>(id), head);
        i += uint64_t{1} << m_pm.page(head).order();
      }
    }
  }

 private:
  struct File {
    uint64_t nr_pages = 0;
    std::vector<uint64_t> pfn;  // per page index: the frame caching it
  };
  PhysMem& m_pm;
  std::vector<File> m_files;
};

}  // namespace tlbsim::mm
