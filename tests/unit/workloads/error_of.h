// The InputError read_workload() throws for `text`, or a test failure when it
// accepts it. Shared by the workload reader's unit tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "workloads/workload_reader.h"

namespace tlbsim::workload::test {

inline InputError error_of(const std::string& text, unsigned cpus) {
  try {
    read_workload(Json::parse(text), "/workload", cpus);
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text;
  return InputError("", "");
}

}  // namespace tlbsim::workload::test
