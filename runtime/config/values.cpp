#include "config/values.hpp"

#include <cctype>
#include <optional>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops {
namespace {

std::optional<bool> as_bool(const std::string& value) {
  const std::string v = to_lower(value);
  if (v == "1" || v == "yes" || v == "y" || v == "true" || v == "on") return true;
  if (v.empty() || v == "0" || v == "no" || v == "n" || v == "false" || v == "off") return false;
  return std::nullopt;
}

bool digits_only(const std::string& s) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// K..P as a power of two (10..50); 0 for no suffix; -1 for anything else.
int suffix_shift(std::string unit) {
  unit = to_lower(unit);
  if (unit.ends_with('b')) unit.pop_back();
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
  if (unit.empty()) return 0;
  static const std::string kSuffixes = "kmgtp";
  const size_t at = unit.size() == 1 ? kSuffixes.find(unit[0]) : std::string::npos;
  return at == std::string::npos ? -1 : static_cast<int>(10 * (at + 1));
}

}  // namespace

uint64_t parse_size(const std::string& value, const std::string& what) {
  const Error bad(Errc::invalid_argument, what + ": '" + value + "' is not a size",
                  "write a number of bytes, or one with K, M, G, T or P (powers of 1024), e.g. "
                  "500M, 20G or 1.5T");
  const std::string text = trim(value);
  size_t end = 0;
  while (end < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  const std::string number = text.substr(0, end);
  const int shift = suffix_shift(trim(text.substr(end)));
  const size_t dot = number.find('.');
  const std::string whole = number.substr(0, dot);
  const std::string fraction = dot == std::string::npos ? "" : number.substr(dot + 1);
  if (shift < 0 || !digits_only(whole) || (dot != std::string::npos && !digits_only(fraction)) ||
      (dot != std::string::npos && shift == 0)) {
    throw bad;
  }
  const uint64_t n = std::stoull(whole);
  if (shift && n > (UINT64_MAX >> shift)) throw bad;
  uint64_t bytes = n << shift;
  if (!fraction.empty()) {
    // Nine decimal places are plenty for a size; more would overflow here.
    const std::string digits = fraction.substr(0, 9);
    uint64_t scale = 1;
    for (size_t i = 0; i < digits.size(); ++i) scale *= 10;
    const unsigned __int128 part =
        (static_cast<unsigned __int128>(std::stoull(digits)) << shift) / scale;
    if (part > UINT64_MAX - bytes) throw bad;
    bytes += static_cast<uint64_t>(part);
  }
  return bytes;
}

bool parse_bool(const std::string& value, const std::string& what) {
  if (auto b = as_bool(value)) return *b;
  throw Error(Errc::invalid_argument, what + ": '" + value + "' is not yes or no",
              "write yes or no (also 1/0, true/false, y/n, on/off)");
}

std::vector<std::string> parse_host_list(const std::string& value, const std::string& what) {
  if (auto b = as_bool(value))
    return *b ? std::vector<std::string>{"*"} : std::vector<std::string>{};
  std::string commas = value;
  for (char& c : commas) {
    if (c == ' ' || c == '\t') c = ',';
  }
  std::vector<std::string> hosts = split_list(commas, ',');
  for (const auto& host : hosts) {
    const bool ok = host == "*" || host.find_first_of("/@#?") == std::string::npos;
    if (!ok) {
      throw Error(Errc::invalid_argument, what + ": '" + host + "' is not a registry host",
                  "write HOST[:PORT] (no scheme or path), several separated by commas, '*' for "
                  "any, or yes/no");
    }
  }
  return hosts;
}

uint64_t parse_seconds(const std::string& value, const std::string& what, uint64_t max) {
  const std::string v = trim(value);
  size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
  const std::string unit = to_lower(trim(v.substr(digits)));
  const uint64_t scale = unit.empty() || unit == "s" ? 1
                         : unit == "m"               ? 60
                         : unit == "h"               ? 3600
                                                     : 0;
  uint64_t n = 0;
  bool ok = digits > 0 && digits <= 9 && scale != 0;
  if (ok) {
    n = std::stoull(v.substr(0, digits)) * scale;
    ok = n <= max;
  }
  if (!ok) {
    throw Error(
        Errc::invalid_argument,
        what + ": '" + value + "' is not a time from 0 to " + std::to_string(max) + " seconds",
        "write whole seconds, or with s, m or h (30, 2m)");
  }
  return n;
}

}  // namespace deepops
