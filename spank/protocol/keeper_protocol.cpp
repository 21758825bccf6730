#include "keeper_protocol.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string_view>

#include "util/error.hpp"

namespace deepops {

// MountEntry as the keeper receives it: every field, so that the keeper
// mounts exactly what the plugin parsed and checked.
void to_json(nlohmann::json& j, const MountEntry& m) {
  j = {{"source", m.source},
       {"target", m.target},
       {"type", m.type},
       {"flags", m.flags},
       {"data", m.data},
       {"bind", m.bind},
       {"recursive", m.recursive},
       {"read_only", m.read_only},
       {"create", static_cast<int>(m.create)},
       {"move", m.move},
       {"detach", m.detach},
       {"propagation", m.propagation},
       {"propagation_recursive", m.propagation_recursive},
       {"nofail", m.nofail},
       {"order", m.order},
       {"origin", m.origin}};
}

void from_json(const nlohmann::json& j, MountEntry& m) {
  m.source = j.at("source").get<std::string>();
  m.target = j.at("target").get<std::string>();
  m.type = j.at("type").get<std::string>();
  m.flags = j.at("flags").get<unsigned long>();
  m.data = j.at("data").get<std::string>();
  m.bind = j.at("bind").get<bool>();
  m.recursive = j.at("recursive").get<bool>();
  m.read_only = j.at("read_only").get<bool>();
  m.create = static_cast<MountEntry::Create>(j.at("create").get<int>());
  m.move = j.at("move").get<bool>();
  m.detach = j.at("detach").get<bool>();
  m.propagation = j.at("propagation").get<unsigned long>();
  m.propagation_recursive = j.at("propagation_recursive").get<unsigned long>();
  m.nofail = j.at("nofail").get<bool>();
  m.order = j.at("order").get<int>();
  m.origin = j.at("origin").get<std::string>();
}

namespace spank {
using nlohmann::json;

namespace {

template <typename T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

template <typename T>
std::optional<T> optional_from(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<T>();
}

json request_json(const ContainerRequest& r) {
  json name = nullptr;
  if (r.name) name = {{"name", r.name->name}, {"mode", static_cast<int>(r.name->mode)}};
  return {{"image", r.image},
          {"mounts", r.mounts},
          {"workdir", r.workdir},
          {"name", name},
          {"save", r.save},
          {"mount_home", optional_json(r.mount_home)},
          {"remap_root", optional_json(r.remap_root)},
          {"entrypoint", optional_json(r.entrypoint)},
          {"entrypoint_log", r.entrypoint_log},
          {"writable", optional_json(r.writable)},
          {"env_names", r.env_names},
          {"unshare_net", r.unshare_net},
          {"unshare_ipc", r.unshare_ipc},
          {"unshare_uts", r.unshare_uts}};
}

ContainerRequest request_from(const json& j) {
  ContainerRequest r;
  r.image = j.at("image").get<std::string>();
  r.mounts = j.at("mounts").get<std::vector<MountEntry>>();
  r.workdir = j.at("workdir").get<std::string>();
  if (!j.at("name").is_null()) {
    const json& n = j.at("name");
    r.name =
        ContainerRequest::Name{n.at("name").get<std::string>(),
                               static_cast<ContainerRequest::NameMode>(n.at("mode").get<int>())};
  }
  r.save = j.at("save").get<std::string>();
  r.mount_home = optional_from<bool>(j, "mount_home");
  r.remap_root = optional_from<bool>(j, "remap_root");
  r.entrypoint = optional_from<bool>(j, "entrypoint");
  r.entrypoint_log = j.at("entrypoint_log").get<bool>();
  r.writable = optional_from<bool>(j, "writable");
  r.env_names = j.at("env_names").get<std::vector<std::string>>();
  r.unshare_net = j.at("unshare_net").get<bool>();
  r.unshare_ipc = j.at("unshare_ipc").get<bool>();
  r.unshare_uts = j.at("unshare_uts").get<bool>();
  return r;
}

json config_json(const PlugstackConfig& c) {
  return {{"runtime_path", c.runtime_path.string()},
          {"sysconf_dir", c.sysconf_dir.string()},
          {"execute_entrypoint", c.execute_entrypoint},
          {"job_scope", c.job_scope},
          {"sbatch_support", c.sbatch_support},
          {"start_timeout_s", c.start_timeout.count()},
          {"importer", c.importer.string()}};
}

PlugstackConfig config_from(const json& j) {
  PlugstackConfig c;
  c.runtime_path = j.at("runtime_path").get<std::string>();
  c.sysconf_dir = j.at("sysconf_dir").get<std::string>();
  c.execute_entrypoint = j.at("execute_entrypoint").get<bool>();
  c.job_scope = j.at("job_scope").get<bool>();
  c.sbatch_support = j.at("sbatch_support").get<bool>();
  c.start_timeout = std::chrono::seconds(j.at("start_timeout_s").get<int64_t>());
  c.importer = j.at("importer").get<std::string>();
  return c;
}

json step_json(const StepInfo& s) {
  return {{"uid", s.uid},
          {"gid", s.gid},
          {"job_id", s.job_id},
          {"step_id", s.step_id},
          {"batch", s.batch},
          {"node", s.node},
          {"job_env", s.job_env},
          {"cwd", s.cwd.string()},
          {"argv", s.argv},
          {"groups", s.who.groups},
          {"slurmd_spool_dir", s.slurmd_spool_dir},
          {"tmp_fs", s.tmp_fs}};
}

StepInfo step_from(const json& j) {
  StepInfo s;
  s.uid = j.at("uid").get<uid_t>();
  s.gid = j.at("gid").get<gid_t>();
  s.job_id = j.at("job_id").get<std::string>();
  s.step_id = j.at("step_id").get<std::string>();
  s.batch = j.at("batch").get<bool>();
  s.node = j.at("node").get<std::string>();
  s.job_env = j.at("job_env").get<EnvMap>();
  s.cwd = j.at("cwd").get<std::string>();
  s.argv = j.at("argv").get<std::vector<std::string>>();
  s.who = UserIdentity{s.uid, s.gid, j.at("groups").get<std::vector<gid_t>>()};
  s.slurmd_spool_dir = j.at("slurmd_spool_dir").get<std::string>();
  s.tmp_fs = j.at("tmp_fs").get<std::string>();
  return s;
}

// Whether `text`, read as JSON, nests arrays and objects at most `limit`
// deep: checked before root parses what the user's keeper wrote, since
// nlohmann copies and prints nested values recursively, and deep nesting
// costs memory far beyond the text's size.
bool nesting_at_most(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// The report holds the image's config: a few levels (labels, env) suffice.
constexpr int kMaxNesting = 16;

// The keeper's request is the plugin's own document: a wrong shape is a bug
// (or a hand-run keeper), told as such.
template <typename F>
auto parse_request(const std::string& text, const char* what, F&& read) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error(Errc::invalid_argument, std::string("the ") + what + " request is not JSON",
                "deepops-keeper is run by the Slurm plugin, not by hand");
  }
  try {
    return read(j);
  } catch (const json::exception& e) {
    throw Error(Errc::invalid_argument,
                std::string("the ") + what + " request is malformed (" + e.what() + ")",
                "the plugin and deepops-keeper must come from the same package");
  }
}

}  // namespace

std::string describe_exception(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return error->describe();
  return std::string("internal error: ") + e.what();
}

std::string dump_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

EnvLookup env_lookup(EnvMap env) {
  return [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

EnvDelta env_delta(const EnvMap& before, const EnvMap& after) {
  EnvDelta d;
  for (const auto& [k, v] : after) {
    auto it = before.find(k);
    if (it == before.end() || it->second != v) d.set[k] = v;
  }
  for (const auto& [k, v] : before) {
    if (!after.count(k)) d.unset.push_back(k);
  }
  return d;
}

std::string to_json(const StartRequest& r) {
  return dump_text(json{{"request", request_json(r.request)},
                        {"config", config_json(r.config)},
                        {"step", step_json(r.step)}});
}

StartRequest start_request_from_json(const std::string& text) {
  return parse_request(text, "start", [](const json& j) {
    return StartRequest{request_from(j.at("request")), config_from(j.at("config")),
                        step_from(j.at("step"))};
  });
}

std::string to_json(const RemoveJobRequest& r) {
  return dump_text(json{{"job_id", r.job_id}, {"node", r.node}, {"config", config_json(r.config)}});
}

RemoveJobRequest remove_job_request_from_json(const std::string& text) {
  return parse_request(text, "clean-up", [](const json& j) {
    return RemoveJobRequest{j.at("job_id").get<std::string>(), j.at("node").get<std::string>(),
                            config_from(j.at("config"))};
  });
}

std::string KeeperReport::to_json() const {
  json j = {{"ok", ok},
            {"error", error},
            {"keeper", keeper},
            {"attached", attached},
            {"container", container},
            {"notice", notice},
            {"log", log},
            {"set", env.set},
            {"unset", env.unset},
            {"workdir", workdir},
            {"workdir_required", workdir_required},
            {"remap_root", remap_root},
            {"seccomp", id_call_filter},
            {"pytorch", pytorch},
            {"image", image},
            {"squashfs", squashfs.string()},
            {"layer_dir", layer_dir.string()},
            {"layer_is_temporary", layer_is_temporary},
            {"save_to", save_to.string()},
            {"runtime_dir", runtime_dir.string()},
            {"overlay", overlay}};
  return dump_text(j);
}

// The keeper runs as the job's user, who can make it write anything: a report
// of the wrong shape is an error of the step, never an exception in slurmstepd.
KeeperReport KeeperReport::from_json(const std::string& text) {
  KeeperReport r;
  if (!nesting_at_most(text, kMaxNesting)) {
    r.error = "the container's keeper sent a malformed report (nested too deep)";
    return r;
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    r.error = "the container's keeper sent no report";
    return r;
  }
  try {
    r.ok = j.value("ok", false);
    r.error = j.value("error", "");
    if (!r.ok) return r;
    if (j.contains("keeper")) {  // a pid: nlohmann's float-to-int conversion would be UB
      const json& k = j["keeper"];
      if (!k.is_number_unsigned() || k.get<uint64_t>() > std::numeric_limits<pid_t>::max()) {
        throw std::invalid_argument("\"keeper\" is not a process id");
      }
      r.keeper = static_cast<pid_t>(k.get<uint64_t>());
    }
    r.attached = j.value("attached", false);
    r.container = j.value("container", "");
    r.notice = j.value("notice", "");
    r.log = j.value("log", "");
    r.env.set = j.value("set", EnvMap{});
    r.env.unset = j.value("unset", std::vector<std::string>{});
    r.workdir = j.value("workdir", "/");
    r.workdir_required = j.value("workdir_required", false);
    r.remap_root = j.value("remap_root", false);
    r.id_call_filter = j.value("seccomp", true);
    r.pytorch = j.value("pytorch", false);
    if (j.contains("image")) {
      if (!j["image"].is_object()) throw std::invalid_argument("\"image\" is not an object");
      r.image = j["image"];
    }
    r.squashfs = j.value("squashfs", "");
    r.layer_dir = j.value("layer_dir", "");
    r.layer_is_temporary = j.value("layer_is_temporary", false);
    r.save_to = j.value("save_to", "");
    r.runtime_dir = j.value("runtime_dir", "");
    r.overlay = j.value("overlay", "auto");
  } catch (const std::exception& e) {
    KeeperReport malformed;
    malformed.error =
        std::string("the container's keeper sent a malformed report (") + e.what() + ")";
    return malformed;
  }
  return r;
}

std::string KeeperLog::to_json() const {
  return dump_text(json{{"ok", ok}, {"error", error}, {"lines", lines}});
}

KeeperLog KeeperLog::from_json(const std::string& text) {
  KeeperLog out;
  if (!nesting_at_most(text, kMaxNesting)) {
    out.error = "deepops-keeper sent a malformed answer (nested too deep)";
    return out;
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    out.error = "deepops-keeper sent no answer";
    return out;
  }
  try {
    out.ok = j.value("ok", false);
    out.error = j.value("error", "");
    out.lines = j.value("lines", std::vector<std::string>{});
  } catch (const std::exception& e) {
    out = KeeperLog{};
    out.error = std::string("deepops-keeper sent a malformed answer (") + e.what() + ")";
  }
  return out;
}

ReadOutcome read_keeper_pipe(int fd, const ProgressSink& progress,
                             const std::function<bool()>& cancelled,
                             std::chrono::milliseconds every, const ReadLimits& limits) {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  auto next_check = started + every;
  std::string line;
  // A progress line is shown; the first other line is the report.
  auto take = [&](std::string& text) -> bool {
    if (!nesting_at_most(text, kMaxNesting)) return true;  // the (malformed) report
    json j = json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("progress")) {
      if (progress && j["progress"].is_string()) progress(j["progress"].get<std::string>());
      return false;
    }
    return !text.empty();
  };
  char chunk[65536];
  for (;;) {
    int wait_ms = -1;
    auto now = Clock::now();
    if (limits.deadline.count() > 0) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(started + limits.deadline - now);
      if (left.count() <= 0) return {ReadOutcome::Ended::deadline, ""};
      wait_ms = static_cast<int>(std::min<int64_t>(left.count(), std::numeric_limits<int>::max()));
    }
    if (cancelled) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(next_check - now);
      if (left.count() <= 0) {
        if (cancelled()) return {ReadOutcome::Ended::cancelled, ""};
        next_check = Clock::now() + every;
        continue;
      }
      int check_ms = static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
      wait_ms = wait_ms < 0 ? check_ms : std::min(wait_ms, check_ms);
    }
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return {ReadOutcome::Ended::eof, ""};
    if (ready == 0) continue;
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    for (size_t at = 0; at < static_cast<size_t>(n);) {
      const char* start = chunk + at;
      const char* nl =
          static_cast<const char*>(std::memchr(start, '\n', static_cast<size_t>(n) - at));
      const size_t len = nl ? static_cast<size_t>(nl - start) : static_cast<size_t>(n) - at;
      if (line.size() + len > limits.max_line) return {ReadOutcome::Ended::too_large, ""};
      line.append(start, len);
      at += len;
      if (!nl) break;
      ++at;
      if (take(line)) return {ReadOutcome::Ended::report, std::move(line)};
      line.clear();
    }
  }
  if (take(line)) return {ReadOutcome::Ended::report, std::move(line)};
  return {ReadOutcome::Ended::eof, ""};
}

namespace {

// SIGPIPE blocked for this thread while it lives, and one it raised taken
// back: a keeper that died before it read its request is an error, not
// the end of the process that writes (slurmd's epilog does not ignore it).
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~NoSigpipe() {
    const timespec now{0, 0};
    while (sigtimedwait(&pipe_, nullptr, &now) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  NoSigpipe(const NoSigpipe&) = delete;
  NoSigpipe& operator=(const NoSigpipe&) = delete;

 private:
  sigset_t pipe_{}, old_{};
};

}  // namespace

bool write_document(int fd, const std::string& text, std::chrono::milliseconds deadline) {
  const NoSigpipe no_sigpipe;
  const auto until = std::chrono::steady_clock::now() + deadline;
  size_t done = 0;
  while (done < text.size()) {
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return false;
    if (ready == 0) continue;
    if (p.revents & (POLLERR | POLLHUP)) return false;
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace spank
}  // namespace deepops
