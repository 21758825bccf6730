#pragma once
// deepops-keeper's plumbing: its pipes, and the children it runs work in.
#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "util/error.hpp"

namespace deepops::spank {

// Up to `limit` bytes of `fd`, to its end; throws Error past the limit.
std::string read_bounded(int fd, size_t limit, const std::string& what);

// `text` and a newline, whole (a line is what the plugin reads).
void write_line(int fd, const std::string& text);

// {"ok": false, "error": ..., "code": ...}
nlohmann::json error_json(const Error& e);

// Runs `body` in a forked child (killed if the keeper dies, and by SIGTERM)
// and returns what
// it returned; an Error it throws comes back as an Error. Imports run so:
// they start threads, and the keeper forks again later. `before_reap`, when
// set, is called with the child's pid once it is dead and before it is
// reaped (the pid is still its own).
std::string run_in_child(const std::function<std::string()>& body,
                         const std::function<void(pid_t)>& before_reap = {});

}  // namespace deepops::spank
