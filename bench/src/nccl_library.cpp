#include "nccl_library.hpp"

#include <dlfcn.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <type_traits>

#include "backend.hpp"

// Where nccl.h is at hand (the CUDA toolkit ships it), hold our declarations
// to it at build time.
#if __has_include(<nccl.h>)
#include <nccl.h>
static_assert(ncclSuccess == deepops::bench::nccl::kSuccess && ncclInProgress == 7);
static_assert(ncclInt32 == 2 && ncclFloat16 == 6 && ncclFloat32 == 7 && ncclBfloat16 == 9);
static_assert(ncclSum == 0 && ncclProd == 1 && ncclMax == 2 && ncclMin == 3);
static_assert(sizeof(ncclUniqueId) == sizeof(deepops::bench::nccl::UniqueId));
static_assert(sizeof(ncclResult_t) == sizeof(int) && sizeof(ncclComm_t) == sizeof(void*));
#endif

namespace deepops::bench::nccl {

DataTypeId data_type(DataType t) {
  switch (t) {
    case DataType::i32:
      return 2;
    case DataType::f16:
      return 6;
    case DataType::f32:
      return 7;
    case DataType::bf16:
      return 9;
  }
  throw std::invalid_argument("no NCCL type for this element type");
}

RedOpId red_op(RedOp op) {
  switch (op) {
    case RedOp::sum:
      return 0;
    case RedOp::prod:
      return 1;
    case RedOp::max:
      return 2;
    case RedOp::min:
      return 3;
  }
  throw std::invalid_argument("no NCCL reduction for this op");
}

const Library& Library::load(const std::string& path) {
  static std::mutex lock;
  static std::map<std::string, const Library*> loaded;
  std::lock_guard guard(lock);
  if (auto it = loaded.find(path); it != loaded.end()) return *it->second;
  const std::string name = path.empty() ? "libnccl.so.2" : path;
  void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    throw SetupError("NCCL is not installed here: cannot load " + name + " (" + dlerror() +
                     "). Install NCCL (libnccl2), or give its library with --nccl-library "
                     "PATH or DEEPOPS_BENCH_NCCL_LIBRARY.");
  }
  auto* l = new Library();  // lives as long as the process, as the library does
  auto bind = [&](auto& fn, const char* symbol, bool required) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
    if (!fn && required) {
      throw SetupError(name + " lacks " + symbol + ": NCCL 2.10 or newer is needed");
    }
  };
  bind(l->GetVersion, "ncclGetVersion", true);
  bind(l->GetErrorString, "ncclGetErrorString", true);
  bind(l->GetLastError, "ncclGetLastError", false);
  bind(l->GetUniqueId, "ncclGetUniqueId", true);
  bind(l->CommInitRank, "ncclCommInitRank", true);
  bind(l->CommDestroy, "ncclCommDestroy", true);
  bind(l->CommFinalize, "ncclCommFinalize", false);
  bind(l->CommAbort, "ncclCommAbort", true);
  bind(l->CommGetAsyncError, "ncclCommGetAsyncError", true);
  bind(l->GroupStart, "ncclGroupStart", true);
  bind(l->GroupEnd, "ncclGroupEnd", true);
  bind(l->AllReduce, "ncclAllReduce", true);
  int code = 0;
  l->GetVersion(&code);
  if (code < 21000) {
    throw SetupError(name + " is NCCL " + l->version() + ": 2.10 or newer is needed (bfloat16)");
  }
  loaded[path] = l;
  return *l;
}

std::string Library::version() const {
  int code = 0;
  GetVersion(&code);
  // Since 2.9 the code is major*10000 + minor*100 + patch; before, major*1000.
  const int major = code >= 10000 ? code / 10000 : code / 1000;
  const int minor = code >= 10000 ? code / 100 % 100 : code / 100 % 10;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(code % 100);
}

void Library::check(Result rc, const std::string& what, Comm comm) const {
  if (rc == kSuccess) return;
  std::string text = GetErrorString(rc);
  if (GetLastError) {
    const char* last = GetLastError(comm);
    if (last && *last) text += " (" + std::string(last) + ")";
  }
  throw std::runtime_error(what + ": " + text +
                           ". NCCL_DEBUG=INFO in the environment shows NCCL's own log.");
}

}  // namespace deepops::bench::nccl
