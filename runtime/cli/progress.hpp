#pragma once

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "image/importer.hpp"

namespace deepops::cli {

// Shows an import's progress on stderr: one redrawn line with bytes, rate
// and ETA on a terminal; off a terminal (logs, CI, srun), a plain line per
// phase change and at most one every few seconds while downloading.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet);
  void operator()(const ImportProgress& p);
  void finish();  // ends the redrawn line

 private:
  void draw_bar(const ImportProgress& p, double rate);
  static std::string in_flight(const ImportProgress& p);
  void report_finished_layers(const ImportProgress& p);
  std::vector<bool> finished_;
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  ImportProgress::Phase last_phase_ = ImportProgress::Phase::resolving;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_print_{};
};

std::string human_bytes(int64_t bytes);

}  // namespace deepops::cli
