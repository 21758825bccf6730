#pragma once
// A fresh folder for the running test: ctest runs each test in a process of
// its own, in parallel, so the name carries the pid and the test's name.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace deepops::test {

class TestFolder {
 public:
  explicit TestFolder(const std::string& prefix)
      : path_(std::filesystem::temp_directory_path() /
              (prefix + "-" + std::to_string(getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TestFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TestFolder(const TestFolder&) = delete;
  TestFolder& operator=(const TestFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A fixture with a fresh folder of its own, `root`, named for its suite.
class FolderTest : public ::testing::Test {
 protected:
  TestFolder folder{::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name()};
  std::filesystem::path root = folder.path();
};

}  // namespace deepops::test
