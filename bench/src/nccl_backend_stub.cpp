// Built instead of nccl_backend.cpp where no cuda.h was found at build time.
#include "nccl_backend.hpp"

namespace deepops::bench {
namespace {
[[noreturn]] void not_built() {
  throw SetupError(
      "this deepops-bench was built without the nccl backend (no cuda.h at build time; "
      "rebuild with the CUDA toolkit's headers present). --backend cpu still works.");
}
}  // namespace

void probe_nccl(const NcclOptions&) { not_built(); }
std::unique_ptr<AllReduceBackend> make_nccl_backend(Ring&, const LaunchInfo&, const NcclOptions&) {
  not_built();
}

}  // namespace deepops::bench
