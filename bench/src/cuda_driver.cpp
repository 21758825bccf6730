#include "cuda_driver.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <stdexcept>
#include <type_traits>

#include "backend.hpp"

namespace deepops::bench {
namespace {

// cuda.h maps most names to versioned symbols (cuMemAlloc -> cuMemAlloc_v2):
// stringify after expansion to look up the one the header's types describe.
#define DEEPOPS_STR2(x) #x
#define DEEPOPS_STR(x) DEEPOPS_STR2(x)

}  // namespace

std::string visible_devices_hint() {
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  return v ? std::string(" (CUDA_VISIBLE_DEVICES=") + v + ")" : "";
}

const CudaDriver& CudaDriver::load() {
  static const CudaDriver* loaded = [] {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      throw SetupError(std::string("no GPU: the NVIDIA driver library libcuda.so.1 is not "
                                   "installed on this node (") +
                       dlerror() + "). Use --backend cpu to test the network of CPU-only nodes.");
    }
    auto* d = new CudaDriver();  // lives as long as the process, as the library does
    auto bind = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
      if (!fn) {
        throw SetupError(std::string("no usable GPU driver: libcuda.so.1 lacks ") + symbol +
                         " (driver too old for this deepops-bench?)");
      }
    };
#define DEEPOPS_BIND(name) bind(d->name, DEEPOPS_STR(name));
    DEEPOPS_BIND(cuInit)
    DEEPOPS_BIND(cuDriverGetVersion)
    DEEPOPS_BIND(cuGetErrorString)
    DEEPOPS_BIND(cuDeviceGetCount)
    DEEPOPS_BIND(cuDeviceGet)
    DEEPOPS_BIND(cuDeviceGetName)
    DEEPOPS_BIND(cuDeviceGetPCIBusId)
    DEEPOPS_BIND(cuDevicePrimaryCtxRetain)
    DEEPOPS_BIND(cuDevicePrimaryCtxRelease)
    DEEPOPS_BIND(cuCtxSetCurrent)
    DEEPOPS_BIND(cuMemAlloc)
    DEEPOPS_BIND(cuMemFree)
    DEEPOPS_BIND(cuMemcpyHtoDAsync)
    DEEPOPS_BIND(cuMemcpyDtoHAsync)
    DEEPOPS_BIND(cuStreamCreate)
    DEEPOPS_BIND(cuStreamDestroy)
    DEEPOPS_BIND(cuStreamQuery)
#undef DEEPOPS_BIND
    CUresult rc = d->cuInit(0);
    if (rc == CUDA_ERROR_NO_DEVICE) {
      throw SetupError("no GPU: the NVIDIA driver is installed but sees no device" +
                       visible_devices_hint() +
                       ". Use --backend cpu to test the network of CPU-only nodes.");
    }
    if (rc != CUDA_SUCCESS) {
      const char* text = nullptr;
      d->cuGetErrorString(rc, &text);
      throw SetupError(std::string("no usable GPU: the NVIDIA driver failed to start (cuInit: ") +
                       (text ? text : "error " + std::to_string(rc)) +
                       "). nvidia-smi on this node tells more.");
    }
    return d;
  }();
  return *loaded;
}

int CudaDriver::device_count() const {
  int n = 0;
  check(cuDeviceGetCount(&n), "cuDeviceGetCount");
  return n;
}

void CudaDriver::check(CUresult rc, const std::string& what) const {
  if (rc == CUDA_SUCCESS) return;
  const char* text = nullptr;
  cuGetErrorString(rc, &text);
  throw std::runtime_error(what + ": " + (text ? text : "CUDA error " + std::to_string(rc)));
}

}  // namespace deepops::bench
