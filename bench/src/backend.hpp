#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

#include "datatype.hpp"
#include "ring.hpp"

namespace deepops::bench {

// A run that cannot start here (no GPU, no NCCL, too little memory): the
// message says what is missing and what to do. Exit status 2.
struct SetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What moves the data of the all-reduce under test. The processes' TCP ring
// stays the control plane for every backend: barriers, agreeing on times and
// adding up wrong elements.
class AllReduceBackend {
 public:
  virtual ~AllReduceBackend() = default;
  // Ranks taking part in the all-reduce, over all processes (-g GPUs each).
  virtual int ranks() const = 0;
  // "cpu (TCP ring)", "nccl 2.27.7".
  virtual std::string name() const = 0;
  // One line per rank of this process: where it runs, for the table's head.
  virtual std::string placement() const = 0;
  // Fills every local rank's input, runs one all-reduce and counts the
  // elements of the results that differ from the exact value. `corrupt`
  // (test-only) damages one element of each result first.
  virtual size_t check(size_t count, DataType t, RedOp op, bool in_place, bool corrupt) = 0;
  // Runs `warmup` all-reduces, meets the other processes, then times `iters`
  // of them: microseconds per all-reduce, as this process saw it.
  virtual double time(size_t count, DataType t, RedOp op, bool in_place, int warmup, int iters) = 0;
};

// The TCP ring itself, on host memory; `max_bytes` is the largest message.
std::unique_ptr<AllReduceBackend> make_cpu_backend(Ring& ring, size_t max_bytes);

}  // namespace deepops::bench
