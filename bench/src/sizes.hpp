#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace deepops::bench {

// A byte count as nccl-tests takes it: digits with an optional K, M or G
// (powers of 1024). Throws std::invalid_argument.
size_t parse_size(std::string_view text);

// The message sizes of a run, nccl-tests' -b/-e with -f (multiply) or, when
// the factor is 1 or less, -i (add). Each is rounded down to whole elements;
// at least one element.
std::vector<size_t> message_sizes(size_t min_bytes, size_t max_bytes, double factor,
                                  size_t increment, size_t element_size);

}  // namespace deepops::bench
