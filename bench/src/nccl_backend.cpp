#include "nccl_backend.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "cuda_driver.hpp"
#include "nccl_library.hpp"

namespace deepops::bench {
namespace {

using Clock = std::chrono::steady_clock;
// One all-reduce of any size finishes in well under this on working hardware;
// past it a peer is gone or the fabric hangs. A wait for N queued all-reduces
// allows N times as long.
constexpr auto kNoProgress = std::chrono::seconds(120);

// Runs fn(first, n) over [0, count) in pieces on every core: filling and
// checking gigabytes on one core would take longer than the GPUs' work.
void in_parallel(size_t count, const std::function<void(size_t, size_t)>& fn) {
  const size_t cores = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 32);
  const size_t pieces = std::clamp<size_t>(count >> 20, 1, cores);
  std::vector<std::thread> threads;
  for (size_t p = 1; p < pieces; ++p) {
    const size_t first = count * p / pieces;
    threads.emplace_back(fn, first, count * (p + 1) / pieces - first);
  }
  fn(0, count / pieces);
  for (auto& t : threads) t.join();
}

// One GPU this process drives: its context, stream, buffers and NCCL rank.
struct Gpu {
  int device = 0;
  int rank = 0;  // in the communicator
  CUdevice handle = 0;
  CUcontext context = nullptr;
  CUstream stream = nullptr;
  CUdeviceptr send = 0, recv = 0;
  nccl::Comm comm = nullptr;
  std::string bus;          // PCI bus id, "0000:18:00.0"
  std::string description;  // "GPU 0 [0000:18:00.0] NVIDIA H100 80GB HBM3"
};

class NcclBackend final : public AllReduceBackend {
 public:
  NcclBackend(const CudaDriver& cuda, const nccl::Library& nccl, Ring& ring, int ranks)
      : cuda_(cuda), nccl_(nccl), ring_(ring), ranks_(ranks) {}
  NcclBackend(const NcclBackend&) = delete;
  NcclBackend& operator=(const NcclBackend&) = delete;
  ~NcclBackend() override;

  // Local: picks the GPUs, makes streams and buffers. Throws SetupError.
  void open_gpus(int first_device, int count, int first_rank, size_t max_bytes);
  // Collective: one communicator over every process's GPUs.
  void join_communicator();

  int ranks() const override { return ranks_; }
  std::string name() const override { return "nccl " + nccl_.version(); }
  std::string placement() const override;
  // "HOST BUS-ID" of each GPU, one per line: to find GPUs driven twice.
  std::string gpu_keys() const;
  size_t check(size_t count, DataType t, RedOp op, bool in_place, bool corrupt) override;
  double time(size_t count, DataType t, RedOp op, bool in_place, int warmup, int iters) override;

 private:
  void use(const Gpu& g) const { cuda_.check(cuda_.cuCtxSetCurrent(g.context), "cuCtxSetCurrent"); }
  void enqueue(size_t count, DataType t, RedOp op, bool in_place);
  void synchronize(int queued = 1);

  const CudaDriver& cuda_;
  const nccl::Library& nccl_;
  Ring& ring_;
  int ranks_;
  std::vector<Gpu> gpus_;
  std::vector<char> host_;  // staging for inputs and results
  bool broken_ = false;     // an NCCL error: abort the communicators, never wait on them
};

// One process finalizing several communicators must do it in one group, or
// the first waits for the others (ncclCommFinalize is a collective among the
// node's ranks). Broken ones are aborted: waiting on them helps nobody.
NcclBackend::~NcclBackend() {
  if (!broken_ && nccl_.CommFinalize && gpus_.size() > 1) {
    nccl_.GroupStart();
    for (auto& g : gpus_) {
      if (!g.comm) continue;
      cuda_.cuCtxSetCurrent(g.context);
      nccl_.CommFinalize(g.comm);
    }
    nccl_.GroupEnd();
  }
  for (auto& g : gpus_) {
    if (g.context) cuda_.cuCtxSetCurrent(g.context);
    if (g.comm) (broken_ ? nccl_.CommAbort : nccl_.CommDestroy)(g.comm);
    if (g.stream) cuda_.cuStreamDestroy(g.stream);
    if (g.send) cuda_.cuMemFree(g.send);
    if (g.recv) cuda_.cuMemFree(g.recv);
    if (g.context) cuda_.cuDevicePrimaryCtxRelease(g.handle);
  }
}

void NcclBackend::open_gpus(int first_device, int count, int first_rank, size_t max_bytes) {
  host_.resize(max_bytes);
  for (int i = 0; i < count; ++i) {
    Gpu& g = gpus_.emplace_back();
    g.device = first_device + i;
    g.rank = first_rank + i;
    cuda_.check(cuda_.cuDeviceGet(&g.handle, g.device), "cuDeviceGet");
    char name[128] = {}, bus[32] = {};
    cuda_.cuDeviceGetName(name, sizeof(name) - 1, g.handle);
    cuda_.cuDeviceGetPCIBusId(bus, sizeof(bus) - 1, g.handle);
    g.bus = bus;
    g.description = "GPU " + std::to_string(g.device) + " [" + bus + "] " + name;
    cuda_.check(cuda_.cuDevicePrimaryCtxRetain(&g.context, g.handle),
                "cannot open " + g.description);
    use(g);
    cuda_.check(cuda_.cuStreamCreate(&g.stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    for (CUdeviceptr* buffer : {&g.send, &g.recv}) {
      CUresult rc = cuda_.cuMemAlloc(buffer, std::max<size_t>(max_bytes, 1));
      if (rc != CUDA_SUCCESS) {
        throw SetupError("cannot allocate 2 x " + std::to_string(max_bytes >> 20) + " MiB on " +
                         g.description + ": give a smaller -e (largest message)");
      }
    }
  }
}

void NcclBackend::join_communicator() {
  nccl::UniqueId id{};
  if (ring_.rank() == 0) nccl_.check(nccl_.GetUniqueId(&id), "ncclGetUniqueId");
  broadcast_bytes(ring_, &id, sizeof(id));
  // One process driving several GPUs must create their communicators in one
  // group, or the first ncclCommInitRank waits for the others forever.
  nccl_.check(nccl_.GroupStart(), "ncclGroupStart");
  for (auto& g : gpus_) {
    use(g);
    nccl::Result rc = nccl_.CommInitRank(&g.comm, ranks_, id, g.rank);
    if (rc != nccl::kSuccess) broken_ = true;
    nccl_.check(rc, "ncclCommInitRank on " + g.description);
  }
  nccl::Result rc = nccl_.GroupEnd();
  if (rc != nccl::kSuccess) broken_ = true;
  nccl_.check(rc, "creating the NCCL communicator of " + std::to_string(ranks_) + " ranks");
}

std::string NcclBackend::placement() const {
  std::string lines;
  for (const auto& g : gpus_) {
    if (!lines.empty()) lines += "\n";
    lines += "rank " + std::to_string(g.rank) + " on " + node_name() + " pid " +
             std::to_string(getpid()) + ": " + g.description;
  }
  return lines;
}

std::string NcclBackend::gpu_keys() const {
  std::string keys;
  for (const auto& g : gpus_) keys += host_name() + " " + g.bus + "\n";
  return keys;
}

void NcclBackend::enqueue(size_t count, DataType t, RedOp op, bool in_place) {
  nccl_.check(nccl_.GroupStart(), "ncclGroupStart");
  for (auto& g : gpus_) {
    void* send = reinterpret_cast<void*>(g.send);
    void* recv = in_place ? send : reinterpret_cast<void*>(g.recv);
    nccl::Result rc =
        nccl_.AllReduce(send, recv, count, nccl::data_type(t), nccl::red_op(op), g.comm, g.stream);
    if (rc != nccl::kSuccess) broken_ = true;
    nccl_.check(rc, "ncclAllReduce", g.comm);
  }
  nccl::Result rc = nccl_.GroupEnd();
  if (rc != nccl::kSuccess) broken_ = true;
  nccl_.check(rc, "ncclGroupEnd");
}

// Waits for every stream, watching NCCL for errors from other ranks (a rank
// that died, a broken link) rather than blocking on the stream forever.
void NcclBackend::synchronize(int queued) {
  const auto deadline = Clock::now() + kNoProgress * std::max(queued, 1);
  for (auto& g : gpus_) {
    for (;;) {
      CUresult rc = cuda_.cuStreamQuery(g.stream);
      if (rc == CUDA_SUCCESS) break;
      if (rc != CUDA_ERROR_NOT_READY) cuda_.check(rc, "all-reduce on " + g.description);
      nccl::Result async = nccl::kSuccess;
      nccl_.CommGetAsyncError(g.comm, &async);
      if (async != nccl::kSuccess && async != nccl::kInProgress) {
        broken_ = true;
        nccl_.check(async, "all-reduce on " + g.description, g.comm);
      }
      if (Clock::now() > deadline) {
        broken_ = true;
        throw std::runtime_error("no all-reduce progress on " + g.description + " for " +
                                 std::to_string(kNoProgress.count() * std::max(queued, 1)) +
                                 " s: a rank stopped or the fabric hangs (NCCL_DEBUG=INFO tells "
                                 "more)");
      }
      std::this_thread::yield();
    }
  }
}

// The copies go on the all-reduce's own stream: a plain cuMemcpyHtoD may
// return before its DMA lands, and a non-blocking stream would not wait for
// it (seen on an H100: stale elements in the result).
size_t NcclBackend::check(size_t count, DataType t, RedOp op, bool in_place, bool corrupt) {
  const size_t es = type_size(t);
  const size_t bytes = count * es;
  for (auto& g : gpus_) {
    use(g);
    in_parallel(count, [&](size_t first, size_t n) {
      fill_input(host_.data() + first * es, n, t, op, g.rank, first);
    });
    cuda_.check(cuda_.cuMemcpyHtoDAsync(g.send, host_.data(), bytes, g.stream),
                "copying the input to the GPU");
    synchronize();  // host_ is reused for the next GPU's input
  }
  enqueue(count, t, op, in_place);
  synchronize();
  size_t wrong = 0;
  for (auto& g : gpus_) {
    use(g);
    cuda_.check(cuda_.cuMemcpyDtoHAsync(host_.data(), in_place ? g.send : g.recv, bytes, g.stream),
                "copying the result from the GPU");
    synchronize();
    if (corrupt && count > 0) host_[0] ^= 0x40;
    std::atomic<size_t> found{0};
    in_parallel(count, [&](size_t first, size_t n) {
      found += count_wrong(host_.data() + first * es, n, t, op, ranks_, first);
    });
    wrong += found;
  }
  return wrong;
}

double NcclBackend::time(size_t count, DataType t, RedOp op, bool in_place, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) enqueue(count, t, op, in_place);
  synchronize(warmup);
  ring_.barrier();
  const auto start = Clock::now();
  for (int i = 0; i < iters; ++i) enqueue(count, t, op, in_place);
  synchronize(iters);
  const std::chrono::duration<double, std::micro> spent = Clock::now() - start;
  return spent.count() / std::max(1, iters);
}

// NCCL refuses two ranks on one GPU with an internal error; say which ranks
// and what to change instead. Every process sees the same table, so all
// stop; rank 0 alone says why.
void refuse_shared_gpus(const Ring& ring, const std::vector<std::string>& keys_by_rank) {
  std::map<std::string, size_t> owner;
  for (size_t r = 0; r < keys_by_rank.size(); ++r) {
    std::istringstream lines(keys_by_rank[r]);
    for (std::string key; std::getline(lines, key);) {
      auto [it, fresh] = owner.emplace(key, r);
      if (fresh) continue;
      if (ring.rank() != 0) throw SetupError("");
      const size_t space = key.find(' ');
      throw SetupError("processes " + std::to_string(it->second) + " and " + std::to_string(r) +
                       " would both drive GPU [" + key.substr(space + 1) + "] on " +
                       key.substr(0, space) +
                       ": NCCL needs a GPU of its own per rank; run at most one task per GPU "
                       "(srun --gpus-per-task=1, or fewer tasks per node)");
    }
  }
}

}  // namespace

void probe_nccl(const NcclOptions& options) {
  const CudaDriver& cuda = CudaDriver::load();
  nccl::Library::load(options.library);
  if (cuda.device_count() == 0)
    throw SetupError("no GPU: the driver sees no device" + visible_devices_hint());
}

std::unique_ptr<AllReduceBackend> make_nccl_backend(Ring& ring, const LaunchInfo& where,
                                                    const NcclOptions& options) {
  std::unique_ptr<NcclBackend> backend;
  std::string failure;
  try {
    const CudaDriver& cuda = CudaDriver::load();
    const nccl::Library& nccl = nccl::Library::load(options.library);
    const int g = options.gpus_per_rank;
    backend = std::make_unique<NcclBackend>(cuda, nccl, ring, ring.size() * g);
    const int visible = cuda.device_count();
    const int first = gpu_for_rank(where.local_rank, visible, g);
    if (first < 0) {
      throw SetupError("local rank " + std::to_string(where.local_rank) + " of " +
                       std::to_string(where.local_size) + " wants " + std::to_string(g) +
                       " GPU(s) but this node shows " + std::to_string(visible) +
                       visible_devices_hint() +
                       ": fewer tasks per node, a smaller -g, or --gpus-per-task");
    }
    backend->open_gpus(first, g, ring.rank() * g, options.max_bytes);
  } catch (const std::exception& e) {
    failure = "rank " + std::to_string(ring.rank()) + " on " + node_name() + ": " + e.what();
    backend.reset();
  }
  // Agree before the collective part, so that no rank waits for one that
  // has already given up.
  int32_t failed = failure.empty() ? 0 : 1;
  ring.allreduce(&failed, 1, DataType::i32, RedOp::sum);
  if (!failure.empty()) throw SetupError(failure);
  if (failed > 0) {
    throw SetupError(ring.rank() == 0
                         ? std::to_string(failed) + " of " + std::to_string(ring.size()) +
                               " ranks could not start the nccl backend (above)"
                         : "");
  }
  refuse_shared_gpus(ring, gather_text(ring, backend->gpu_keys(), 4096));
  backend->join_communicator();
  return backend;
}

}  // namespace deepops::bench
