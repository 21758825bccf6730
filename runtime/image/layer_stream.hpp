#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "registry/manifest.hpp"

struct archive;

namespace deepops {

// A spooled layer, decompressed by a thread of its own into a bounded queue
// of chunks: decompression (ISA-L's inflate for gzip, libzstd for zstd) runs
// beside the tar parsing and squashfs compression that consume it, instead
// of before them on the merge thread. Memory is bounded by the queue.
class LayerStream {
 public:
  LayerStream(std::filesystem::path file, LayerCompression compression, std::string name);
  ~LayerStream();
  LayerStream(const LayerStream&) = delete;
  LayerStream& operator=(const LayerStream&) = delete;

  // The next decompressed bytes, valid until the next call; empty at the
  // end. Rethrows the decompressor's error (Errc::corrupt, naming the layer).
  std::string_view next();

 private:
  void produce();
  void produce_plain(int fd);
  void produce_gzip(int fd);
  void produce_zstd(int fd);
  bool push(std::string&& chunk);  // false once stopping

  std::filesystem::path file_;
  LayerCompression compression_;
  std::string name_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::string current_;
  bool done_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

// A libarchive tar reader over a LayerStream (the stream lives as long as
// the reader). Throws Error(corrupt) if the layer cannot be opened.
// libarchive's last error on `a`, or "unknown error": archive_error_string
// returns NULL for some failures of crafted input.
std::string archive_error(struct archive* a);

std::shared_ptr<struct archive> open_layer_tar(const std::filesystem::path& file,
                                               LayerCompression compression,
                                               const std::string& name);

}  // namespace deepops
