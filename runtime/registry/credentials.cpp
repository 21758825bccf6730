#include "registry/credentials.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.hpp"

namespace deepops {
namespace {

std::optional<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// Enroot's netrc allows `password $(command)`, evaluated by the shell: keys
// stay in a password manager or a file only the user can read. This runs as
// the calling (unprivileged) user, never in a privileged context.
std::string run_password_command(const std::string& command, const std::string& source) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw Error(Errc::auth, "cannot run the password command of " + source);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
  int status = pclose(pipe.release());
  if (status != 0) {
    throw Error(Errc::auth, "the password command of " + source + " failed (" + command + ")",
                "run it by hand to see why");
  }
  return trim_newlines(out);
}

std::string resolve_password(const std::string& password, const std::string& source) {
  if (password.size() > 3 && password.starts_with("$(") && password.ends_with(")")) {
    return run_password_command(password.substr(2, password.size() - 3), source);
  }
  return password;
}

std::string base64_decode(std::string_view in) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string display_path(const std::filesystem::path& p, const std::string& home) {
  std::string s = p.string();
  if (!home.empty() && s.starts_with(home + "/")) return "~" + s.substr(home.size());
  return s;
}

}  // namespace

CredentialFiles CredentialFiles::from_environment(const EnvLookup& env) {
  auto env_or = [&env](const char* name, const std::string& fallback) {
    auto v = env(name);
    return v && !v->empty() ? *v : fallback;
  };
  std::string home = env_or("HOME", "/");
  std::string config_home = env_or("XDG_CONFIG_HOME", home + "/.config");
  CredentialFiles files;
  files.home = home;
  files.enroot_netrc =
      std::filesystem::path(env_or("ENROOT_CONFIG_PATH", config_home + "/enroot")) / ".credentials";
  files.docker_config =
      std::filesystem::path(env_or("DOCKER_CONFIG", home + "/.docker")) / "config.json";
  return files;
}

std::vector<NetrcEntry> parse_netrc(std::string_view text) {
  std::vector<NetrcEntry> entries;
  NetrcEntry* current = nullptr;
  int line = 1;
  size_t i = 0;
  auto next_token = [&]() -> std::string {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) {
      if (text[i++] == '\n') ++line;
    }
    size_t start = i;
    // $(command) passwords may contain spaces: take up to the matching ')'.
    if (text.substr(i, 2) == "$(") {
      int depth = 0;
      for (; i < text.size(); ++i) {
        if (text[i] == '(') ++depth;
        if (text[i] == ')' && --depth == 0) {
          ++i;
          break;
        }
        if (text[i] == '\n') break;
      }
      return std::string(text.substr(start, i - start));
    }
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    return std::string(text.substr(start, i - start));
  };
  while (true) {
    std::string token = next_token();
    if (token.empty()) break;
    if (token == "machine") {
      entries.push_back(NetrcEntry{next_token(), {}, {}, line});
      current = &entries.back();
    } else if (token == "default") {
      current = nullptr;  // Enroot has no use for a default entry
    } else if (token == "login" && current) {
      current->login = next_token();
    } else if (token == "password" && current) {
      current->password = next_token();
    } else if (token == "macdef") {
      // A macro runs to the next blank line: skip it.
      size_t end = text.find("\n\n", i);
      i = end == std::string_view::npos ? text.size() : end;
    }
  }
  return entries;
}

std::vector<std::string> credential_aliases(const std::string& registry) {
  if (registry == "registry-1.docker.io" || registry == "docker.io" ||
      registry == "index.docker.io") {
    return {"registry-1.docker.io", "docker.io", "index.docker.io", "https://index.docker.io/v1/",
            "auth.docker.io"};
  }
  return {registry, "https://" + registry, "http://" + registry};
}

std::optional<Credential> docker_config_credential(std::string_view json_text,
                                                   const std::string& registry,
                                                   const std::string& source) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    throw Error(Errc::invalid_argument, source + " is not valid JSON", "fix or remove the file");
  }
  auto auths = doc.find("auths");
  if (auths == doc.end() || !auths->is_object()) return std::nullopt;
  for (const auto& name : credential_aliases(registry)) {
    auto entry = auths->find(name);
    if (entry == auths->end() || !entry->is_object()) continue;
    auto auth = entry->find("auth");
    if (auth == entry->end() || !auth->is_string()) continue;
    std::string decoded = base64_decode(auth->get<std::string>());
    size_t colon = decoded.find(':');
    if (colon == std::string::npos) continue;
    return Credential{decoded.substr(0, colon), decoded.substr(colon + 1),
                      source + " (auths." + name + ")"};
  }
  return std::nullopt;
}

std::optional<Credential> lookup_credential(const CredentialFiles& files,
                                            const std::string& registry, const std::string& user) {
  if (auto text = read_text(files.enroot_netrc)) {
    auto aliases = credential_aliases(registry);
    const std::vector<NetrcEntry> entries = parse_netrc(*text);
    const NetrcEntry* best = nullptr;
    for (const auto& e : entries) {
      if (std::find(aliases.begin(), aliases.end(), e.machine) == aliases.end()) continue;
      if (!user.empty() && e.login != user) continue;
      best = &e;
      break;
    }
    if (best) {
      std::string source =
          display_path(files.enroot_netrc, files.home) + " line " + std::to_string(best->line);
      return Credential{best->login, resolve_password(best->password, source), source};
    }
  }
  if (auto text = read_text(files.docker_config)) {
    auto cred =
        docker_config_credential(*text, registry, display_path(files.docker_config, files.home));
    if (cred && (user.empty() || cred->login == user)) return cred;
  }
  return std::nullopt;
}

}  // namespace deepops
