#include "rendezvous.hpp"

#include <dlfcn.h>
#include <netdb.h>

#include <cstdlib>
#include <memory>

#include "backend.hpp"
#include "sweep.hpp"

namespace deepops::bench {
namespace {

std::string env_string(const EnvGet& env, const char* name) {
  auto v = env(name);
  return v ? *v : "";
}

bool resolves(const std::string& host) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return false;
  freeaddrinfo(res);
  return true;
}

}  // namespace

std::string default_rendezvous(const LaunchInfo& where, const EnvGet& env,
                               const std::function<std::string(const std::string&)>& first_host) {
  const std::string addr = env_string(env, "MASTER_ADDR");
  const std::string port = env_string(env, "MASTER_PORT");
  if (!addr.empty()) return addr + ":" + (port.empty() ? "29400" : port);
  if (where.launcher != "srun") return "127.0.0.1:" + (port.empty() ? "29400" : port);
  std::string nodes = env_string(env, "SLURM_STEP_NODELIST");
  if (nodes.empty()) nodes = env_string(env, "SLURM_JOB_NODELIST");
  if (nodes.empty()) {
    throw SetupError("under srun without SLURM_STEP_NODELIST: set MASTER_ADDR to rank 0's node");
  }
  if (!port.empty()) return first_host(nodes) + ":" + port;
  const unsigned long job = std::strtoul(env_string(env, "SLURM_JOB_ID").c_str(), nullptr, 10);
  const unsigned long step = std::strtoul(env_string(env, "SLURM_STEP_ID").c_str(), nullptr, 10);
  return first_host(nodes) + ":" + std::to_string(29500 + (job * 7 + step) % 2000);
}

namespace {
// libslurm of whichever Slurm release the node runs. Its soname grows with
// each release (22.05: .so.38, 24.11: .so.42, 26.05: .so.45), and only
// libslurm-dev brings the unversioned name, so the newest soname up to a
// margin above the newest release known is tried first.
void* open_libslurm() {
  if (void* lib = dlopen("libslurm.so", RTLD_NOW | RTLD_LOCAL)) return lib;
  constexpr int kNewest = 60, kOldest = 36;  // 36: Slurm 20.11
  for (int so = kNewest; so >= kOldest; --so) {
    const std::string name = "libslurm.so." + std::to_string(so);
    if (void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) return lib;
  }
  return nullptr;
}
}  // namespace

std::string slurm_first_host(const std::string& hostlist) {
  void* lib = open_libslurm();
  if (!lib) {
    throw SetupError("cannot load libslurm to find rank 0's node in '" + hostlist +
                     "': set MASTER_ADDR to it");
  }
  using Create = void* (*)(const char*);
  using Shift = char* (*)(void*);
  using Destroy = void (*)(void*);
  auto create = reinterpret_cast<Create>(dlsym(lib, "slurm_hostlist_create"));
  auto shift = reinterpret_cast<Shift>(dlsym(lib, "slurm_hostlist_shift"));
  auto destroy = reinterpret_cast<Destroy>(dlsym(lib, "slurm_hostlist_destroy"));
  if (!create || !shift || !destroy) throw SetupError("libslurm lacks the hostlist functions");
  std::unique_ptr<void, Destroy> list(create(hostlist.c_str()), destroy);
  std::unique_ptr<char, decltype(&std::free)> first(list ? shift(list.get()) : nullptr, &std::free);
  if (!first) throw SetupError("'" + hostlist + "' names no node");
  return first.get();
}

std::string reachable_address(const std::string& node) {
  if (resolves(node)) return node;
  std::string addr;
  try {
    addr = slurm_node_address(node);
  } catch (const std::exception&) {
  }
  if (addr.empty()) {
    throw SetupError("rank 0's node " + node +
                     " does not resolve here and Slurm gives no NodeAddr for it: set MASTER_ADDR "
                     "to its address");
  }
  return addr;
}

}  // namespace deepops::bench
