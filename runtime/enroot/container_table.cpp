// `enroot list -f`: Enroot's columns, one row per process of each running
// container, found as lsns finds them: processes sharing the keeper's mount
// namespace. Only the caller's own processes are readable, which are the
// only ones a user's containers hold.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include "container/container_store.hpp"
#include "enroot/enroot_commands.hpp"
#include "util/strings.hpp"

namespace deepops::enroot {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxProcFile = 64 * 1024;

std::string read_proc(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text(kMaxProcFile, '\0');
  in.read(text.data(), static_cast<std::streamsize>(kMaxProcFile));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

// "4026532201" from the link "mnt:[4026532201]"; empty if unreadable.
std::string namespace_id(pid_t pid, const char* ns) {
  std::error_code ec;
  const std::string link =
      fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + ns, ec).string();
  const size_t open = link.find('['), close = link.find(']');
  return ec || open == std::string::npos || close == std::string::npos
             ? std::string()
             : link.substr(open + 1, close - open - 1);
}

std::vector<pid_t> processes_in_mount_namespace(const std::string& mntns) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (const dirent* e = readdir(proc)) {
    const std::string name = e->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (namespace_id(pid, "mnt") == mntns) out.push_back(pid);
  }
  closedir(proc);
  std::sort(out.begin(), out.end());
  return out;
}

// ps's STIME: HH:MM today, MonDD this year, else the year.
std::string start_text(std::time_t started, std::time_t now) {
  std::tm s{}, n{};
  localtime_r(&started, &s);
  localtime_r(&now, &n);
  char buf[32];
  if (s.tm_year == n.tm_year && s.tm_yday == n.tm_yday) {
    std::strftime(buf, sizeof(buf), "%H:%M", &s);
  } else if (s.tm_year == n.tm_year) {
    std::strftime(buf, sizeof(buf), "%b%d", &s);
  } else {
    std::strftime(buf, sizeof(buf), "%Y", &s);
  }
  return buf;
}

// ps's ETIME: [[DD-]hh:]mm:ss.
std::string elapsed_text(long seconds) {
  seconds = std::max(0L, seconds);
  const long days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60;
  char buf[48];
  if (days > 0) {
    std::snprintf(buf, sizeof(buf), "%ld-%02ld:%02ld:%02ld", days, hours, minutes, seconds % 60);
  } else if (hours > 0) {
    std::snprintf(buf, sizeof(buf), "%02ld:%02ld:%02ld", hours, minutes, seconds % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%02ld:%02ld", minutes, seconds % 60);
  }
  return buf;
}

long boot_time() {
  std::istringstream in(read_proc("/proc/stat"));
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
  }
  return 0;
}

// PID COMM STATE STARTED TIME MNTNS USERNS COMMAND of one process; empty if gone.
std::vector<std::string> process_row(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  const std::string stat = read_proc(dir + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return {};
  std::istringstream fields(stat.substr(paren + 2));
  std::vector<std::string> f;
  for (std::string w; fields >> w;) f.push_back(w);
  if (f.size() < 20) return {};
  const long ticks = sysconf(_SC_CLK_TCK);
  const std::time_t started = static_cast<std::time_t>(boot_time() + std::stoll(f[19]) / ticks);
  const std::time_t now = std::time(nullptr);
  std::string command = read_proc(dir + "/cmdline");
  std::replace(command.begin(), command.end(), '\0', ' ');
  return {std::to_string(pid),
          trim(read_proc(dir + "/comm")),
          f[0],
          start_text(started, now),
          elapsed_text(static_cast<long>(now - started)),
          namespace_id(pid, "mnt"),
          namespace_id(pid, "user"),
          trim(command)};
}

// As `column -t`: each column as wide as its widest cell, two spaces apart.
std::string align(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string fancy_container_table(const Settings& settings) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "PID", "COMM", "STATE", "STARTED", "TIME", "MNTNS", "USERNS", "COMMAND"}};
  for (const auto& c : ContainerStore(settings.data_path).list()) {
    if (c.running_elsewhere) {
      rows.push_back({c.name, "-", "-", "-", "-", "-", "-", "-", "(running on another node)"});
      continue;
    }
    const std::string mntns = c.keeper ? namespace_id(*c.keeper, "mnt") : "";
    bool first = true;
    for (pid_t pid : mntns.empty() ? std::vector<pid_t>{} : processes_in_mount_namespace(mntns)) {
      auto row = process_row(pid);
      if (row.empty()) continue;
      row.insert(row.begin(), first ? c.name : "");
      rows.push_back(row);
      first = false;
    }
    if (first) rows.push_back({c.name});
  }
  return align(rows);
}

}  // namespace deepops::enroot
