#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "registry/manifest.hpp"
#include "util/unique_fd.hpp"

namespace deepops {

// A named container: an image plus a writable layer that outlives each start.
// It lives in <data>/containers/<name>/: image.sqsh (a hard link to the
// cached image, so gc cannot take it away), image.json, upper/ and work/
// (the overlay's layer), and, while it runs, lock (flock'ed) and keeper.json.
struct NamedContainer {
  std::string name;
  std::filesystem::path dir;
  std::filesystem::path squashfs;
  std::string image;  // what it was created from
  ImageConfig config;
  std::string created_at;
  std::optional<pid_t> keeper;     // set while it runs on this machine
  bool remap_root = false;         // of the running keeper
  bool running_elsewhere = false;  // its keeper runs on another node (shared data folder)
};

class ContainerStore {
 public:
  explicit ContainerStore(std::filesystem::path data_path);

  // Names: letters, digits, '.', '_', '-', '+' (Enroot's default names join
  // an image's path and tag with it), at most 128, not starting with '.'.
  static void validate_name(const std::string& name);
  static bool is_valid_name(const std::string& name);

  NamedContainer create(const std::string& name, const std::filesystem::path& squashfs,
                        const std::string& image, const ImageConfig& config);
  std::optional<NamedContainer> find(const std::string& name) const;
  std::vector<NamedContainer> list() const;
  // Refuses a running container; its files are all the user's, so this
  // needs no privilege.
  void remove(const std::string& name);

  // Held while the container runs (start, export): a second start of the
  // same container fails at once with the keeper's pid.
  class RunLock {
   public:
    RunLock(UniqueFd lock, UniqueFd dir, std::string boot_id)
        : lock_(std::move(lock)), dir_(std::move(dir)), boot_id_(std::move(boot_id)) {}
    // Records the keeper (through a descriptor: called after pivot_root).
    void publish_keeper(pid_t pid, bool remap_root) const;

   private:
    UniqueFd lock_;
    UniqueFd dir_;
    std::string boot_id_;
  };
  RunLock lock_for_run(const NamedContainer& c) const;

 private:
  void fill(const std::filesystem::path& tmp, const std::filesystem::path& squashfs,
            const std::string& name, const std::string& image, const ImageConfig& config) const;
  std::string space_hint(int err) const;

  std::filesystem::path root_;
};

// Removes a writable layer's folder (upper/, work/) and all it holds, even
// the mode-000 work/work that overlayfs leaves behind. Throws an Error naming
// it when it cannot.
void remove_tree(const std::filesystem::path& dir);

}  // namespace deepops
