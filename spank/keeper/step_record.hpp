#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "registry/manifest.hpp"

namespace deepops::spank {

// A running unnamed step's container, as other steps of its user find it:
// Pyxis names an unnamed container after its step, so
// `--container-name=JOBID.STEPID` joins it while it runs. The keeper writes
// the record in the user's runtime folder when the container is ready and
// removes it when it stops.
struct StepRecord {
  pid_t keeper = 0;
  uint64_t keeper_start = 0;  // /proc/PID/stat's start time: a reused pid is not the keeper
  bool remap_root = false;
  ImageConfig config;
};

// JOBID.STEPID, both decimal: the only names a step record answers to.
bool is_step_name(const std::string& name);

// The record's file name in the runtime folder: per node, since a lab (or a
// site) may give several nodes one runtime folder.
std::string step_record_name(const std::string& step_name, const std::string& node);

// When a process started (clock ticks since boot), or 0 if it is gone.
uint64_t process_start_time(pid_t pid);

// Written whole (temporary file, then rename), so a reader never sees half,
// and removed, through a descriptor of the runtime folder: the keeper does
// both from inside the container, where the host's paths are gone.
void write_step_record(int runtime_dir_fd, const std::string& file_name, const StepRecord& record);
void remove_step_record(int runtime_dir_fd, const std::string& file_name);

// Removes this node's records whose keeper is gone (SIGKILLed with its node:
// nothing else could remove them). Run by each keeper, as the user.
void prune_step_records(const std::filesystem::path& runtime_dir, const std::string& node);

// The record if there is one and its keeper still runs. The file is the
// user's own: it is read with a bound and parsed without trust; joining
// what it names needs the user's own rights anyway.
std::optional<StepRecord> read_step_record(const std::filesystem::path& path);

}  // namespace deepops::spank
