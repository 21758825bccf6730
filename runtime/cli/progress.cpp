#include "progress.hpp"

#include <unistd.h>

#include <cmath>

namespace deepops::cli {

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

ProgressPrinter::ProgressPrinter(bool quiet) : quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1) {}

// "  L7 45%  L6 12%": the layers downloading now, numbered as in the manifest.
std::string ProgressPrinter::in_flight(const ImportProgress& p) {
  std::string out;
  int shown = 0;
  for (size_t i = p.layer_sizes.size(); i-- > 0 && shown < 4;) {
    int64_t got = i < p.layer_bytes.size() ? p.layer_bytes[i] : 0;
    if (got == 0 || got >= p.layer_sizes[i]) continue;
    out += "  L" + std::to_string(i + 1) + " " + std::to_string(got * 100 / p.layer_sizes[i]) + "%";
    ++shown;
  }
  return out;
}

void ProgressPrinter::report_finished_layers(const ImportProgress& p) {
  finished_.resize(p.layer_sizes.size(), false);
  for (size_t i = 0; i < p.layer_sizes.size(); ++i) {
    if (finished_[i] || p.layer_bytes[i] < p.layer_sizes[i]) continue;
    finished_[i] = true;
    std::fprintf(stderr, "layer %zu/%zu downloaded (%s)\n", i + 1, p.layer_sizes.size(),
                 human_bytes(p.layer_sizes[i]).c_str());
  }
}

void ProgressPrinter::draw_bar(const ImportProgress& p, double rate) {
  constexpr int kWidth = 24;
  double frac = p.bytes_total > 0
                    ? static_cast<double>(p.bytes_downloaded) / static_cast<double>(p.bytes_total)
                    : 0;
  int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::string eta = "--";
  // An ETA from the first few bytes would be noise: wait for 1%.
  if (rate > 0 && p.bytes_total > p.bytes_downloaded && p.bytes_downloaded * 100 >= p.bytes_total) {
    eta = std::to_string(static_cast<int>(
              std::ceil(static_cast<double>(p.bytes_total - p.bytes_downloaded) / rate))) +
          "s";
  }
  std::fprintf(stderr, "\r\033[K[%s] %s / %s  %s/s  ETA %s  merged %d/%d%s", bar.c_str(),
               human_bytes(p.bytes_downloaded).c_str(), human_bytes(p.bytes_total).c_str(),
               human_bytes(static_cast<int64_t>(rate)).c_str(), eta.c_str(), p.layers_merged,
               p.layers, in_flight(p).c_str());
  drawn_ = true;
}

void ProgressPrinter::operator()(const ImportProgress& p) {
  using Phase = ImportProgress::Phase;
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? static_cast<double>(p.bytes_downloaded) / secs : 0;
  bool phase_changed = p.phase != last_phase_;
  last_phase_ = p.phase;
  if (tty_) {
    if (p.phase == Phase::downloading || p.phase == Phase::merging) {
      if (now - last_print_ > std::chrono::milliseconds(100) || phase_changed) {
        draw_bar(p, rate);
        last_print_ = now;
      }
    } else if (phase_changed && p.phase == Phase::writing) {
      finish();
      std::fprintf(stderr, "writing the squashfs image...\n");
    }
    return;
  }
  if (p.phase == Phase::downloading || p.phase == Phase::merging) report_finished_layers(p);
  if (phase_changed || now - last_print_ > std::chrono::seconds(5)) {
    switch (p.phase) {
      case Phase::resolving:
        std::fprintf(stderr, "resolving %s\n", p.image.c_str());
        break;
      case Phase::cached:
        std::fprintf(stderr, "%s is already in the cache\n", p.image.c_str());
        break;
      case Phase::downloading:
      case Phase::merging:
        std::fprintf(stderr, "%s / %s downloaded (%s/s), %d/%d layers merged\n",
                     human_bytes(p.bytes_downloaded).c_str(), human_bytes(p.bytes_total).c_str(),
                     human_bytes(static_cast<int64_t>(rate)).c_str(), p.layers_merged, p.layers);
        break;
      case Phase::writing:
        std::fprintf(stderr, "writing the squashfs image\n");
        break;
      case Phase::done:
        break;
    }
    last_print_ = now;
  }
}

void ProgressPrinter::finish() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

}  // namespace deepops::cli
