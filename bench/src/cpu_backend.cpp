#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "backend.hpp"
#include "launch.hpp"

namespace deepops::bench {
namespace {

class CpuBackend final : public AllReduceBackend {
 public:
  CpuBackend(Ring& ring, size_t max_bytes) : ring_(ring), input_(max_bytes), output_(max_bytes) {}

  int ranks() const override { return ring_.size(); }
  std::string name() const override { return "cpu (TCP ring)"; }
  std::string placement() const override {
    return "rank " + std::to_string(ring_.rank()) + " on " + node_name() + " pid " +
           std::to_string(getpid()) + ": host memory";
  }

  size_t check(size_t count, DataType t, RedOp op, bool in_place, bool corrupt) override {
    fill_input(input_.data(), count, t, op, ring_.rank());
    ring_.corrupt_results(corrupt);
    once(count, t, op, in_place);
    ring_.corrupt_results(false);
    return count_wrong(in_place ? input_.data() : output_.data(), count, t, op, ring_.size());
  }

  double time(size_t count, DataType t, RedOp op, bool in_place, int warmup, int iters) override {
    for (int i = 0; i < warmup; ++i) once(count, t, op, in_place);
    ring_.barrier();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) once(count, t, op, in_place);
    const std::chrono::duration<double, std::micro> spent =
        std::chrono::steady_clock::now() - start;
    return spent.count() / std::max(1, iters);
  }

 private:
  void once(size_t count, DataType t, RedOp op, bool in_place) {
    ring_.allreduce(input_.data(), in_place ? input_.data() : output_.data(), count, t, op);
  }

  Ring& ring_;
  std::vector<char> input_, output_;
};

}  // namespace

std::unique_ptr<AllReduceBackend> make_cpu_backend(Ring& ring, size_t max_bytes) {
  return std::make_unique<CpuBackend>(ring, max_bytes);
}

}  // namespace deepops::bench
