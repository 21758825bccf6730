#include "sizes.hpp"

#include <cctype>
#include <stdexcept>
#include <string>

namespace deepops::bench {

size_t parse_size(std::string_view text) {
  std::string t(text);
  if (t.empty()) throw std::invalid_argument("empty size");
  size_t scale = 1;
  switch (std::toupper(static_cast<unsigned char>(t.back()))) {
    case 'K':
      scale = size_t{1} << 10;
      break;
    case 'M':
      scale = size_t{1} << 20;
      break;
    case 'G':
      scale = size_t{1} << 30;
      break;
    default:
      break;
  }
  if (scale != 1) t.pop_back();
  if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos || t.size() > 15) {
    throw std::invalid_argument("'" + std::string(text) +
                                "' is not a size (digits, then K, M or G: 8, 64K, 1G)");
  }
  return std::stoull(t) * scale;
}

std::vector<size_t> message_sizes(size_t min_bytes, size_t max_bytes, double factor,
                                  size_t increment, size_t element_size) {
  if (min_bytes > max_bytes) {
    throw std::invalid_argument("the minimum size (-b) is above the maximum (-e)");
  }
  if (factor <= 1 && increment == 0) {
    throw std::invalid_argument("give a step: -f above 1, or -i above 0");
  }
  std::vector<size_t> out;
  for (size_t bytes = min_bytes; bytes <= max_bytes && out.size() < 4096;) {
    size_t whole = bytes / element_size * element_size;
    if (whole == 0) whole = element_size;
    if (out.empty() || out.back() != whole) out.push_back(whole);
    size_t next =
        factor > 1 ? static_cast<size_t>(static_cast<double>(bytes) * factor) : bytes + increment;
    if (next <= bytes) next = bytes + 1;
    bytes = next;
  }
  return out;
}

}  // namespace deepops::bench
