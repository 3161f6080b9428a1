// Kernel versions: the release that changed each behaviour switch of KernelProfile.
// A profile names a version ("version": "6.9"); every switch takes its default from
// this table, then the profile's and the experiment's own keys override it one by
// one. docs/kernel-profiles.md is generated from the table (tlbsim kernels
// --markdown), and a test keeps the two and the KernelProfile keys in step.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/params.h"

namespace tlbsim::mm {

struct KernelProfile;

/// A Linux version as major * 100 + minor: 6.9 → 609.
using KernelVersion = unsigned;
inline constexpr KernelVersion kOldestKernelVersion = 607;
inline constexpr KernelVersion kNewestKernelVersion = 619;

/// "6.9" → 609; nullopt for anything else than MAJOR.MINOR.
std::optional<KernelVersion> parse_kernel_version(std::string_view text);
std::string format_kernel_version(KernelVersion v);

/// One value of a switch from a release on.
struct VersionStep {
  KernelVersion since;  // kOldestKernelVersion for the value of the oldest modelled kernel
  const char* value;    // the value as JSON text ("true", "31", "\"likely_mapped_shared\"")
  const char* source;   // commit / series / release that made the change
};

/// A KernelProfile key (dotted for nested sets: "thp.shrink_underused") and its history.
struct VersionedSwitch {
  const char* key;
  std::vector<VersionStep> steps;  // ascending `since`, the first at kOldestKernelVersion
};

/// Every behaviour switch of KernelProfile with its history.
const std::vector<VersionedSwitch>& kernel_version_table();

/// The versions that have a profile in configs/kernels/ (columns of the docs table).
const std::vector<KernelVersion>& shipped_kernel_versions();

/// The value (JSON) of `sw` in version `v`.
Json version_value(const VersionedSwitch& sw, KernelVersion v);

/// Every switch of the table at version `v`, nested as KernelProfile::load() reads it.
Json version_defaults(KernelVersion v);

/// Sets every switch of the table to its value in `p.version()` (nothing when the
/// version does not parse: validate() reports it). Call it before the keys that
/// override the version's defaults.
void apply_version_defaults(KernelProfile& p);

/// Keys of KernelProfile that are not behaviour switches of a version: the name, the
/// version itself, the sysfs controls an experiment sets (thp.enabled, per-size
/// controls, use_zero_page) and the deliberately broken debug_* switches.
bool is_unversioned_key(const std::string& key);

/// Checks a profile against what its version can have: "" if it can exist,
/// otherwise the reason (e.g. anonymous mTHP before 6.8). `pointer` receives the
/// JSON pointer of the offending key relative to the profile.
std::string version_conflict(const KernelProfile& p, std::string* pointer);

/// The docs table: one row per switch, one column per shipped version.
std::string kernel_versions_markdown();

}  // namespace tlbsim::mm
