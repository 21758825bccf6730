#include "enroot/conf_script.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include "util/child_process.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops::enroot {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxScript = 1 << 20;
constexpr size_t kMaxOutput = 4 << 20;

std::string read_script(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error(Errc::not_found, "No such file or directory: " + path.string(),
                "give the configuration script's path to --conf");
  }
  if (fs::file_size(path, ec) > kMaxScript) {
    throw Error(Errc::invalid_argument, path.string() + " is larger than 1 MiB",
                "a configuration script defines environ(), mounts(), hooks() and rc()");
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A marker no function's output holds by chance: section headers.
std::string make_marker() {
  std::random_device rd;
  std::ostringstream m;
  m << "@@deepops-conf-" << std::hex << rd() << rd();
  return m.str();
}

// The bash program that prints each defined function's lines after a header.
std::string evaluation_program(const std::string& marker) {
  return "set -e\n"
         "source \"$0\"\n"
         "if declare -F environ >/dev/null; then echo '" +
         marker +
         " environ'; environ; fi\n"
         "if declare -F mounts >/dev/null; then echo '" +
         marker +
         " mounts'; mounts; fi\n"
         "if declare -F rc >/dev/null; then echo '" +
         marker +
         " rc'; "
         "declare -f rc | sed '1,2d;$d'; fi\n"
         "if declare -F hooks >/dev/null; then echo '" +
         marker + " hooks'; fi\n";
}

}  // namespace

void parse_conf_output(ConfScript& conf, const std::string& output, const std::string& marker,
                       const EnvLookup& env) {
  std::string section;
  std::string environ_text, mounts_text, rc_text;
  std::string_view text = output;
  if (text.ends_with('\n')) text.remove_suffix(1);
  for (const auto& line : split(text, '\n')) {
    if (line.starts_with(marker + " ")) {
      section = line.substr(marker.size() + 1);
      if (section == "rc") conf.rc = "";
      conf.has_hooks = conf.has_hooks || section == "hooks";
      continue;
    }
    std::string* target = section == "environ"  ? &environ_text
                          : section == "mounts" ? &mounts_text
                          : section == "rc"     ? &rc_text
                                                : nullptr;
    if (target) *target += line + "\n";
  }
  const std::string where = conf.path.string();
  conf.environ = parse_environ_text(environ_text, env, where + ": environ()");
  conf.mounts = parse_mounts_text(mounts_text, env, where + ": mounts()");
  if (conf.rc) conf.rc = rc_text;
}

ConfScript evaluate_conf_script(const fs::path& script, const std::vector<std::string>& command,
                                const EnvLookup& env) {
  ConfScript conf;
  conf.path = fs::absolute(script).lexically_normal();
  conf.text = read_script(conf.path);
  if (run_capturing_stdout({"bash", "-n", conf.path.string()}, 0).exit_status != 0) {
    throw Error(Errc::invalid_argument, "Invalid argument: " + conf.path.string(),
                "bash cannot parse it (its message is above)");
  }
  const std::string marker = make_marker();
  std::vector<std::string> argv = {
      "bash", "--norc", "--noprofile", "-c", evaluation_program(marker), conf.path.string()};
  argv.insert(argv.end(), command.begin(), command.end());
  const CapturedRun run = run_capturing_stdout(argv, kMaxOutput);
  if (run.exit_status != 0) {
    throw Error(Errc::invalid_argument,
                conf.path.string() + " failed (exit status " + std::to_string(run.exit_status) +
                    ") while its environ(), mounts() or rc() ran",
                "its message is above");
  }
  if (run.truncated) {
    throw Error(Errc::invalid_argument, conf.path.string() + " printed more than 4 MiB",
                "environ() and mounts() print one line per variable or mount");
  }
  parse_conf_output(conf, run.out, marker, env);
  return conf;
}

fs::path write_conf_hook(const ConfScript& conf, const fs::path& dir) {
  const fs::path hook = dir / "conf-hooks.sh";
  std::string quoted = "'";
  for (char c : conf.path.string()) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  const std::string text = "#!/bin/bash\nset -e\nsource " + quoted + "\nhooks\n";
  const int fd = open(hook.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0700);
  if (fd < 0) throw sys_error("cannot write " + hook.string(), errno);
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!ok) throw sys_error("cannot write " + hook.string(), errno);
  return hook;
}

}  // namespace deepops::enroot
