#include "launch.hpp"

#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace deepops::bench {
namespace {

int to_int(const std::string& name, const std::string& value) {
  size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || v < 0) {
    throw std::invalid_argument(name + "='" + value + "' is not a count");
  }
  return v;
}

std::optional<int> int_var(const EnvGet& env, const std::string& name) {
  auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return to_int(name, *v);
}

void check(const LaunchInfo& l) {
  if (l.size < 1 || l.rank >= l.size || l.local_size < 1 || l.local_rank >= l.local_size ||
      l.local_size > l.size) {
    throw std::invalid_argument("the " + l.launcher + " variables disagree: rank " +
                                std::to_string(l.rank) + " of " + std::to_string(l.size) +
                                ", local rank " + std::to_string(l.local_rank) + " of " +
                                std::to_string(l.local_size));
  }
}

}  // namespace

int tasks_on_node(const std::string& spec, int node) {
  long long index = 0;  // repeats add up past int on absurd input
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string item =
        spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? spec.size() : comma + 1;
    int repeat = 1;
    size_t paren = item.find("(x");
    if (paren != std::string::npos && item.back() == ')') {
      repeat = to_int("SLURM_STEP_TASKS_PER_NODE", item.substr(paren + 2, item.size() - paren - 3));
      item.resize(paren);
    }
    int count = to_int("SLURM_STEP_TASKS_PER_NODE", item);
    if (node < index + repeat) return count;
    index += repeat;
  }
  throw std::invalid_argument("SLURM_STEP_TASKS_PER_NODE='" + spec + "' has no node " +
                              std::to_string(node));
}

LaunchInfo detect_launch(const EnvGet& env) {
  LaunchInfo l;
  if (auto local = int_var(env, "DEEPOPS_BENCH_RANK")) {  // set by -np for its children
    l.launcher = "local";
    l.rank = l.local_rank = *local;
    l.size = l.local_size = int_var(env, "DEEPOPS_BENCH_SIZE").value_or(1);
  } else if (auto rank = int_var(env, "OMPI_COMM_WORLD_RANK")) {
    l.launcher = "mpirun";
    l.rank = *rank;
    l.size = int_var(env, "OMPI_COMM_WORLD_SIZE").value_or(1);
    l.local_rank = int_var(env, "OMPI_COMM_WORLD_LOCAL_RANK").value_or(0);
    l.local_size = int_var(env, "OMPI_COMM_WORLD_LOCAL_SIZE").value_or(1);
  } else if (auto pmi = int_var(env, "PMI_RANK")) {
    l.launcher = "mpirun";
    l.rank = *pmi;
    l.size = int_var(env, "PMI_SIZE").value_or(1);
    l.local_rank = int_var(env, "MPI_LOCALRANKID").value_or(0);
    l.local_size = int_var(env, "MPI_LOCALNRANKS").value_or(1);
  } else if (auto procid = int_var(env, "SLURM_PROCID")) {
    l.launcher = "srun";
    l.rank = *procid;
    l.size =
        int_var(env, "SLURM_STEP_NUM_TASKS").value_or(int_var(env, "SLURM_NTASKS").value_or(1));
    l.local_rank = int_var(env, "SLURM_LOCALID").value_or(0);
    auto per_node = env("SLURM_STEP_TASKS_PER_NODE");
    if (!per_node || per_node->empty()) per_node = env("SLURM_TASKS_PER_NODE");
    l.local_size = per_node && !per_node->empty()
                       ? tasks_on_node(*per_node, int_var(env, "SLURM_NODEID").value_or(0))
                       : 1;
  }
  check(l);
  return l;
}

std::string host_name() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

std::string node_name() {
  const char* slurm = std::getenv("SLURMD_NODENAME");
  return slurm && *slurm ? slurm : host_name();
}

int gpu_for_rank(int local_rank, int visible_gpus, int gpus_per_rank) {
  if (visible_gpus <= 0 || gpus_per_rank <= 0) return -1;
  if (visible_gpus == gpus_per_rank) return 0;
  const int first = local_rank * gpus_per_rank;
  return first + gpus_per_rank <= visible_gpus ? first : -1;
}

}  // namespace deepops::bench
