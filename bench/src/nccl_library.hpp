#pragma once

// NCCL, loaded at run time (libnccl.so.2). nccl.h is not needed to build:
// what we call of NCCL's stable C ABI is declared here, with the values
// nccl.h gives them (unchanged since NCCL 2.0; bfloat16 since 2.10).
#include <cuda.h>

#include <cstddef>
#include <string>

#include "datatype.hpp"

namespace deepops::bench::nccl {

using Result = int;  // ncclResult_t: 0 is ncclSuccess
constexpr Result kSuccess = 0;
constexpr Result kInProgress = 7;
using DataTypeId = int;  // ncclDataType_t
using RedOpId = int;     // ncclRedOp_t
struct Opaque;
using Comm = Opaque*;  // ncclComm_t
struct UniqueId {
  char internal[128];
};

DataTypeId data_type(DataType t);  // ncclInt32 2, ncclFloat16 6, ncclFloat32 7, ncclBfloat16 9
RedOpId red_op(RedOp op);          // ncclSum 0, ncclProd 1, ncclMax 2, ncclMin 3

class Library {
 public:
  // Loads `path` (empty: libnccl.so.2 from the loader's search path).
  // Throws SetupError saying how to provide NCCL when it is missing or old.
  static const Library& load(const std::string& path);

  std::string version() const;  // "2.27.7"
  // Throws std::runtime_error "<what>: <NCCL's message>" unless ncclSuccess.
  void check(Result rc, const std::string& what, Comm comm = nullptr) const;

  Result (*GetVersion)(int*) = nullptr;
  const char* (*GetErrorString)(Result) = nullptr;
  const char* (*GetLastError)(Comm) = nullptr;  // NCCL >= 2.13; may stay null
  Result (*GetUniqueId)(UniqueId*) = nullptr;
  Result (*CommInitRank)(Comm*, int nranks, UniqueId id, int rank) = nullptr;
  Result (*CommDestroy)(Comm) = nullptr;
  Result (*CommFinalize)(Comm) = nullptr;  // NCCL >= 2.14; may stay null
  Result (*CommAbort)(Comm) = nullptr;
  Result (*CommGetAsyncError)(Comm, Result*) = nullptr;
  Result (*GroupStart)() = nullptr;
  Result (*GroupEnd)() = nullptr;
  Result (*AllReduce)(const void* send, void* recv, size_t count, DataTypeId, RedOpId, Comm,
                      CUstream) = nullptr;

 private:
  Library() = default;
};

}  // namespace deepops::bench::nccl
