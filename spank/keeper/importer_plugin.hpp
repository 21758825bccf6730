#pragma once

#include <filesystem>
#include <string>

#include "config/settings.hpp"
#include "keeper_protocol.hpp"

// Pyxis's importer protocol (plugstack.conf importer=PATH), as deepops-keeper
// runs it, as the job's user: `PATH get URI` prints the squashfs to start
// from on stdout, `PATH release` cleans up once the node's part of the step
// is done. Both get the step's environment plus PYXIS_RUNTIME_PATH,
// PYXIS_VERSION and Slurm's identity of the step.
namespace deepops::spank {

// Whether the image goes through the importer: a registry or daemon image
// (never a squashfs file) when one is configured.
bool uses_importer(const PlugstackConfig& config, const std::string& image);

// The URI Pyxis gives the importer: the image with "docker://" in front
// unless it has a scheme already.
std::string importer_uri(const std::string& image);

// The environment of both calls ("NAME=value").
std::vector<std::string> importer_environment(const PlugstackConfig& config, const StepInfo& step,
                                              const Settings& settings);

// Runs `importer get URI`; returns the absolute squashfs path it printed
// (its last line). Throws an Error with the importer's stderr when it fails,
// prints nothing, or names something that is not a readable file.
std::filesystem::path importer_get(const PlugstackConfig& config, const StepInfo& step,
                                   const Settings& settings, const std::string& image);

// Runs `importer release`; its failure is a log line, never the step's.
KeeperLog importer_release(const StartRequest& request, const Settings& settings);

}  // namespace deepops::spank
