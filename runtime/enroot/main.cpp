// deepops-enroot: Enroot's command line over the deepops runtime. It parses
// Enroot's arguments and configuration, calls the runtime, and prints in
// Enroot's style ([ERROR], [WARN]); nothing more.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "container/container.hpp"
#include "enroot/enroot_app.hpp"
#include "enroot/enroot_commands.hpp"
#include "util/env_lookup.hpp"
#include "util/error.hpp"

namespace deepops::enroot {
namespace {

void print_error(const Error& e) {
  std::fprintf(stderr, "[ERROR] %s\n", e.what());
  if (!e.hint().empty()) std::fprintf(stderr, "[INFO] %s\n", e.hint().c_str());
}

// The settings a user set in the environment that mean nothing here: said
// once, so that nothing is ignored silently (the site's files' are in `info`).
void warn_about_environment(const EnrootConfig& config) {
  for (const auto& n : config.notes()) {
    if (!n.from_environment) continue;
    std::fprintf(stderr, "[WARN] %s=%s has no effect with deepops-enroot: %s\n", n.key.c_str(),
                 n.value.c_str(), n.why.c_str());
  }
}

int dispatch(EnrootCli& cli, EnrootContext& ctx) {
  const EnrootArgs& a = cli.args;
  if (*cli.version) return run_version(ctx);
  if (*cli.info) return run_info(ctx);
  if (*cli.import) return run_import(ctx, a);
  if (*cli.digest) return run_digest(ctx, a);
  if (*cli.load) return run_load(ctx, a);
  if (*cli.create) return run_create(ctx, a);
  if (*cli.start) return run_start(ctx, a, cli.rest());
  if (*cli.batch) return run_batch(ctx, a, cli.rest());
  if (*cli.exec) return run_exec(ctx, a, cli.rest());
  if (*cli.export_cmd) return run_export(ctx, a);
  if (*cli.list) return run_list(ctx, a);
  if (*cli.remove) return run_remove(ctx, a);
  throw Error(Errc::invalid_argument, "enroot bundle is not provided",
              "start the image with deepops-enroot start, or the Slurm plugin; see man "
              "deepops-enroot");
}

}  // namespace

int main(int argc, char** argv) {
  EnrootCli cli(std::string("4.1.0+deepops.") + DEEPOPS_VERSION);
  if (const int status = parse_enroot_command_line(cli, argc, argv); status >= 0) return status;
  try {
    EnrootContext ctx{EnrootConfig::load(process_env_lookup()), std::filesystem::current_path(),
                      process_env_lookup(), DEEPOPS_VERSION};
    // enroot.conf's NVIDIA_*, MELLANOX_*, proxies: exported, as Enroot does.
    for (const auto& [key, value] : ctx.config.exports()) setenv(key.c_str(), value.c_str(), 0);
    if (!*cli.info && !*cli.version) warn_about_environment(ctx.config);
    return dispatch(cli, ctx);
  } catch (const CommandError& e) {
    print_error(e);
    return e.exit_status();
  } catch (const Error& e) {
    print_error(e);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[ERROR] internal error: %s\n", e.what());
    return 1;
  }
}

}  // namespace deepops::enroot

int main(int argc, char** argv) { return deepops::enroot::main(argc, argv); }
