// slurmstepd (root) reads the keeper's pipe, which the job's user can fill
// with anything (the keeper is theirs and dumpable), within a size limit. It may not throw or
// crash: a bad report is an error of the step. (The step's node list comes
// from slurmctld, and libslurm's hostlist parser leaks on garbage, so it is
// not fuzzed here.)
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "keeper_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace deepops::spank;
  int fd = memfd_create("keeper-pipe", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, data, size) != static_cast<ssize_t>(size) || lseek(fd, 0, SEEK_SET) != 0) {
    close(fd);
    return 0;
  }
  // Small limits, so that the fuzzer reaches the too-large path.
  const ReadOutcome out = read_keeper_pipe(
      fd, [](const std::string&) {}, {}, std::chrono::milliseconds(0),
      ReadLimits{4096, std::chrono::milliseconds(0)});
  const std::string report = out.report;
  close(fd);
  (void)KeeperReport::from_json(report);
  return 0;
}
