#pragma once

#include <string>
#include <string_view>
#include <vector>

// The few string operations every parser here needs, written once.
namespace deepops {

// "a,,b" -> {"a", "", "b"}: every field, empty ones included ("" -> {""}).
std::vector<std::string> split(std::string_view text, char separator);

// "/a//b/" -> {"a", "b"}: the non-empty fields, as written.
std::vector<std::string> split_nonempty(std::string_view text, char separator);

// " a, b ,,c" -> {"a", "b", "c"}: a list as people write one (host lists,
// folder lists, GPU ids): each item trimmed, empty items dropped.
std::vector<std::string> split_list(std::string_view text, char separator);

// Leading and trailing spaces, tabs, CR and LF removed.
std::string trim(std::string_view text);

// ASCII lower case.
std::string to_lower(std::string_view text);

}  // namespace deepops
