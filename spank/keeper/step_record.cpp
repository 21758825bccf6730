#include "step_record.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops::spank {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string read_bounded(const fs::path& path, size_t limit) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return {};
  std::string text(limit, '\0');
  ssize_t n = read(fd.get(), text.data(), text.size());
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return text;
}

}  // namespace

bool is_step_name(const std::string& name) {
  size_t dot = name.find('.');
  return dot != std::string::npos && all_digits(name.substr(0, dot)) &&
         all_digits(name.substr(dot + 1));
}

std::string step_record_name(const std::string& step_name, const std::string& node) {
  return "step-" + step_name + "." + node + ".json";
}

uint64_t process_start_time(pid_t pid) {
  // Field 22, counted after the command's closing parenthesis (the command
  // itself may hold spaces and parentheses).
  std::string stat = read_bounded("/proc/" + std::to_string(pid) + "/stat", 4096);
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

void write_step_record(int dir_fd, const std::string& name, const StepRecord& r) {
  const std::string text = json{
      {"keeper", r.keeper},
      {"keeper_start", r.keeper_start},
      {"remap_root", r.remap_root},
      {"config",
       r.config.to_json()}}.dump();
  const std::string tmp = name + ".tmp";
  UniqueFd fd(
      openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd || write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    throw sys_error("cannot record the step's container (" + name + ")", errno);
  }
}

void remove_step_record(int dir_fd, const std::string& name) { unlinkat(dir_fd, name.c_str(), 0); }

void prune_step_records(const fs::path& runtime_dir, const std::string& node) {
  const std::string suffix = "." + node + ".json";
  std::error_code ec;
  int seen = 0;
  for (const auto& e : fs::directory_iterator(runtime_dir, ec)) {
    if (++seen > 10000) break;  // the user's folder: bounded, whatever they put there
    const std::string name = e.path().filename().string();
    if (!name.starts_with("step-") || !name.ends_with(suffix)) continue;
    if (!read_step_record(e.path())) fs::remove(e.path(), ec);
  }
}

std::optional<StepRecord> read_step_record(const fs::path& path) {
  json j = json::parse(read_bounded(path, 1 << 20), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    const json& k = j.at("keeper");
    if (!k.is_number_unsigned() || k.get<uint64_t>() == 0 ||
        k.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<pid_t>::max())) {
      return std::nullopt;
    }
    StepRecord r;
    r.keeper = static_cast<pid_t>(k.get<uint64_t>());
    r.keeper_start = j.at("keeper_start").get<uint64_t>();
    r.remap_root = j.value("remap_root", false);
    r.config = ImageConfig::from_json(j.at("config"));
    if (r.keeper_start == 0 || process_start_time(r.keeper) != r.keeper_start) return std::nullopt;
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace deepops::spank
