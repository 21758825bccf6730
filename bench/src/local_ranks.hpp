#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace deepops::bench {

// One rank that `-np` starts on this machine: the variables it gets, and a
// descriptor it keeps across its exec (-1: none).
struct LocalRank {
  std::vector<std::pair<std::string, std::string>> env;
  int keep_fd = -1;
};

// Forks one process per rank, each exec'ing `argv` (this program) with its
// variables, and supervises them until every one is reaped:
//  - a rank that dies of a signal or exits with 2 or more (an error, not a
//    FAIL verdict) stops all the others;
//  - SIGTERM, SIGINT or SIGHUP to this process stops all of them;
//  - stopping is SIGTERM, then SIGKILL after `grace`;
//  - a rank dies with this process, however it ends (PR_SET_PDEATHSIG).
// `started` runs once every rank is forked (to close what only they need).
// Returns the worst exit status of the ranks (a signal counts as 2), or
// 128+N when this process was stopped by signal N.
int run_local_ranks(const std::vector<LocalRank>& ranks, char** argv, std::chrono::seconds grace,
                    const std::function<void()>& started);

}  // namespace deepops::bench
