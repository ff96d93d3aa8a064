// Whether this process may run AMX tile instructions. Besides cpuid and XCR0 (cpu_features),
// Linux (5.16+) gives a process the 8 KB tile state only when asked:
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); a tile instruction before that raises SIGILL.
// The request is made once per process, on first use, from any thread; threads share it and a
// forked child inherits it (the kernel copies the permission, and this record with the memory).
#pragma once

#include <string>

namespace w4a16::cpu {

struct TileAccess {
  bool granted = false;
  std::string why_not;  // when not granted: what is missing, for `w4a16 info`
};

// The AMX kernels' gate (the amx table's `usable`): the CPU's features, then the OS's permission.
const TileAccess& tile_access();

// How many permission requests this process has made (the tests check that it is at most one).
int tile_permission_requests();

}  // namespace w4a16::cpu
