#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "enroot/enroot_app.hpp"
#include "enroot/enroot_config.hpp"

// What each deepops-enroot command does, over the runtime's use cases.
// Errors are deepops::Error; the exit statuses are Enroot's (1 for any
// failure; start and exec return the command's).
namespace deepops::enroot {

struct EnrootContext {
  EnrootConfig config;
  std::filesystem::path cwd;
  EnvLookup env;
  std::string version;
};

int run_version(const EnrootContext& ctx);
int run_info(const EnrootContext& ctx);
int run_import(const EnrootContext& ctx, const EnrootArgs& a);
int run_digest(const EnrootContext& ctx, const EnrootArgs& a);
int run_load(const EnrootContext& ctx, const EnrootArgs& a);
int run_create(const EnrootContext& ctx, const EnrootArgs& a);
int run_start(EnrootContext& ctx, const EnrootArgs& a, const std::vector<std::string>& words);
int run_batch(EnrootContext& ctx, const EnrootArgs& a, const std::vector<std::string>& words);
int run_exec(const EnrootContext& ctx, const EnrootArgs& a, const std::vector<std::string>& words);
int run_export(const EnrootContext& ctx, const EnrootArgs& a);
int run_list(const EnrootContext& ctx, const EnrootArgs& a);
int run_remove(const EnrootContext& ctx, const EnrootArgs& a);

// `enroot list -f`'s table: one row per process of each running
// container (its mount namespace's), as `column -t` would align it.
std::string fancy_container_table(const Settings& settings);

}  // namespace deepops::enroot
