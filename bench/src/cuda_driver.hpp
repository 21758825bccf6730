#pragma once

// The CUDA driver API, loaded at run time from the driver's libcuda.so.1 so
// that one deepops-bench binary runs on GPU and CPU-only nodes alike. The
// types come from the toolkit's cuda.h (build time only); the driver API is
// used rather than the runtime (libcudart) because libcuda.so.1 is the one
// library every GPU node has, whatever toolkit is or is not installed.
#include <cuda.h>

#include <string>

namespace deepops::bench {

// " (CUDA_VISIBLE_DEVICES=...)" when set, for messages about missing GPUs.
std::string visible_devices_hint();

class CudaDriver {
 public:
  // Loads libcuda.so.1 and initialises it. Throws SetupError saying "no GPU"
  // and why: no driver library, no device, or the driver's own error.
  static const CudaDriver& load();

  int device_count() const;
  // Throws std::runtime_error "<what>: <driver's message>" unless CUDA_SUCCESS.
  void check(CUresult rc, const std::string& what) const;

#define DEEPOPS_CUDA_FN(name) decltype(&::name) name = nullptr;
  DEEPOPS_CUDA_FN(cuInit)
  DEEPOPS_CUDA_FN(cuDriverGetVersion)
  DEEPOPS_CUDA_FN(cuGetErrorString)
  DEEPOPS_CUDA_FN(cuDeviceGetCount)
  DEEPOPS_CUDA_FN(cuDeviceGet)
  DEEPOPS_CUDA_FN(cuDeviceGetName)
  DEEPOPS_CUDA_FN(cuDeviceGetPCIBusId)
  DEEPOPS_CUDA_FN(cuDevicePrimaryCtxRetain)
  DEEPOPS_CUDA_FN(cuDevicePrimaryCtxRelease)
  DEEPOPS_CUDA_FN(cuCtxSetCurrent)
  DEEPOPS_CUDA_FN(cuMemAlloc)
  DEEPOPS_CUDA_FN(cuMemFree)
  DEEPOPS_CUDA_FN(cuMemcpyHtoDAsync)
  DEEPOPS_CUDA_FN(cuMemcpyDtoHAsync)
  DEEPOPS_CUDA_FN(cuStreamCreate)
  DEEPOPS_CUDA_FN(cuStreamDestroy)
  DEEPOPS_CUDA_FN(cuStreamQuery)
#undef DEEPOPS_CUDA_FN

 private:
  CudaDriver() = default;
};

}  // namespace deepops::bench
