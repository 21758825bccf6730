// Helpers for tests of deepops::Error messages.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>

#include "util/error.hpp"

namespace deepops::testing {

// The message of the deepops::Error that `f` throws (checking its code when
// `code` is set); a test failure when it throws nothing or something else.
inline std::string error_of(const std::function<void()>& f, std::optional<Errc> code = {}) {
  try {
    f();
  } catch (const Error& e) {
    if (code) {
      EXPECT_EQ(e.code(), *code) << e.what();
    }
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-deepops exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

}  // namespace deepops::testing

// EXPECT_ERROR_MENTIONS(expr, "a", "b"): expr throws a deepops::Error whose
// message mentions each string. The including file defines kErrorCode (an
// std::optional<Errc>) to also check the error's code.
#define EXPECT_ERROR_MENTIONS(expr, ...)                                                          \
  do {                                                                                            \
    const std::string message_ = ::deepops::testing::error_of([&] { (void)(expr); }, kErrorCode); \
    for (const std::string& needle_ : std::initializer_list<std::string>{__VA_ARGS__}) {          \
      EXPECT_NE(message_.find(needle_), std::string::npos)                                        \
          << "'" << message_ << "' does not mention '" << needle_ << "' (" #expr ")";             \
    }                                                                                             \
  } while (0)
