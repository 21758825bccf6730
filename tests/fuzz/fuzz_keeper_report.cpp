// slurmstepd (root) reads the keeper's pipe, which the job's user can fill
// with anything (the keeper is theirs and dumpable). It may not throw or
// crash: a bad report is an error of the step. (The step's node list comes
// from slurmctld, and libslurm's hostlist parser leaks on garbage, so it is
// not fuzzed here.)
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "step_container.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace deepops::spank;
  int fd = memfd_create("keeper-pipe", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, data, size) != static_cast<ssize_t>(size) || lseek(fd, 0, SEEK_SET) != 0) {
    close(fd);
    return 0;
  }
  const std::string report = read_report(fd, [](const std::string&) {});
  close(fd);
  (void)KeeperReport::from_json(report);
  return 0;
}
