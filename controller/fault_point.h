#pragma once
// Fault injection for the crash and fault tests, compiled only into test builds
// (SLUICE_FAULT_POINTS); elsewhere every call is an empty inline function.
//
// $SLUICE_FAULT names one point as "NAME", "NAME:N" or "NAME:N=ACTION": the N-th time (default
// the first) the process reaches NAME, it dies of SIGKILL (ACTION "kill", the default: what a
// crash or a power cut does between two steps of writing its state), or the operation there
// fails with an errno (ACTION "ENOSPC", "EROFS" or "EIO": a full disk, a read-only file system).

#include <string_view>

namespace sluice {

#ifdef SLUICE_FAULT_POINTS
// 0 to go on as usual, else the errno the caller fails with; does not return for "kill".
int fault_point(std::string_view name);
#else
constexpr int fault_point(std::string_view) {
  return 0;
}
#endif

}  // namespace sluice
