#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// "Did you mean ...?": the nearest of a few known words to a mistyped one.
// The standard library only, so that every program here can link it
// (library deepops-closest-match); deepops-bench takes nothing else of the
// runtime.
namespace deepops {

// The optimal string alignment distance between a and b: the fewest
// insertions, deletions, substitutions and swaps of two adjacent characters
// that make one of the other ("strat" -> "start": 1). Byte-wise.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to word (ASCII case ignored) when it is near enough
// to be what was meant: at most one edit per three characters of the longer
// of the two, and always one edit ("gx" -> "gc"). Ties go to the earlier
// candidate. nullopt when none is that near.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace deepops
