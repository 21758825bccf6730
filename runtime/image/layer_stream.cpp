#include "image/layer_stream.hpp"

#include <archive.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "util/error.hpp"

namespace deepops {
namespace {

constexpr size_t kChunk = 1 << 20;
constexpr size_t kQueueDepth = 8;  // chunks in flight: at most ~8 MiB per layer

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads up to `size` bytes; 0 at the end of the file.
size_t read_some(int fd, char* buf, size_t size, const std::string& name) {
  while (true) {
    ssize_t n = ::read(fd, buf, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR)
      throw Error(Errc::internal,
                  name + ": cannot read the spooled layer: " + std::strerror(errno));
  }
}

[[noreturn]] void bad_data(const std::string& name, const std::string& what) {
  throw Error(Errc::corrupt, name + ": " + what,
              "the layer's data does not match its media type; nothing was imported");
}

}  // namespace

LayerStream::LayerStream(std::filesystem::path file, LayerCompression compression, std::string name)
    : file_(std::move(file)),
      compression_(compression),
      name_(std::move(name)),
      thread_([this] { produce(); }) {}

LayerStream::~LayerStream() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool LayerStream::push(std::string&& chunk) {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return stop_ || queue_.size() < kQueueDepth; });
  if (stop_) return false;
  queue_.push_back(std::move(chunk));
  cv_.notify_all();
  return true;
}

std::string_view LayerStream::next() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (queue_.empty()) {
    if (error_) std::rethrow_exception(error_);
    return {};
  }
  current_ = std::move(queue_.front());
  queue_.pop_front();
  cv_.notify_all();
  return current_;
}

void LayerStream::produce() {
  try {
    Fd fd(::open(file_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0)
      throw Error(Errc::internal,
                  name_ + ": cannot open the spooled layer: " + std::strerror(errno));
    switch (compression_) {
      case LayerCompression::none:
        produce_plain(fd.get());
        break;
      case LayerCompression::gzip:
        produce_gzip(fd.get());
        break;
      case LayerCompression::zstd:
        produce_zstd(fd.get());
        break;
    }
  } catch (...) {
    std::lock_guard lock(mutex_);
    error_ = std::current_exception();
  }
  std::lock_guard lock(mutex_);
  done_ = true;
  cv_.notify_all();
}

void LayerStream::produce_plain(int fd) {
  while (true) {
    std::string chunk(kChunk, '\0');
    size_t n = read_some(fd, chunk.data(), chunk.size(), name_);
    if (n == 0) return;
    chunk.resize(n);
    if (!push(std::move(chunk))) return;
  }
}

// A gzip stream may hold several members back to back; each is inflated in
// turn, and anything after the last one that is not a member is ignored.
void LayerStream::produce_gzip(int fd) {
  auto state = std::make_unique<inflate_state>();
  isal_inflate_init(state.get());
  state->crc_flag = ISAL_GZIP;
  std::string in(kChunk, '\0');
  std::string out(kChunk, '\0');
  size_t out_used = 0;
  bool input_ended = false;
  while (true) {
    if (state->avail_in == 0 && !input_ended) {
      size_t n = read_some(fd, in.data(), in.size(), name_);
      input_ended = n == 0;
      state->next_in = reinterpret_cast<uint8_t*>(in.data());
      state->avail_in = static_cast<uint32_t>(n);
    }
    state->next_out = reinterpret_cast<uint8_t*>(out.data() + out_used);
    state->avail_out = static_cast<uint32_t>(out.size() - out_used);
    int rc = isal_inflate(state.get());
    if (rc < 0) bad_data(name_, "invalid gzip data (ISA-L error " + std::to_string(rc) + ")");
    out_used = out.size() - state->avail_out;
    if (out_used == out.size()) {
      if (!push(std::move(out))) return;
      out.assign(kChunk, '\0');
      out_used = 0;
    }
    if (state->block_state == ISAL_BLOCK_FINISH) {
      if (state->avail_in == 0 && !input_ended) {
        size_t n = read_some(fd, in.data(), in.size(), name_);
        input_ended = n == 0;
        state->next_in = reinterpret_cast<uint8_t*>(in.data());
        state->avail_in = static_cast<uint32_t>(n);
      }
      bool another_member =
          state->avail_in >= 2 && state->next_in[0] == 0x1f && state->next_in[1] == 0x8b;
      if (!another_member) break;
      uint8_t* next_in = state->next_in;
      uint32_t avail_in = state->avail_in;
      isal_inflate_reset(state.get());
      state->crc_flag = ISAL_GZIP;
      state->next_in = next_in;
      state->avail_in = avail_in;
      continue;
    }
    if (input_ended && state->avail_in == 0 && out_used < out.size() && state->avail_out > 0) {
      bad_data(name_, "the gzip stream ends early (truncated layer)");
    }
  }
  out.resize(out_used);
  if (!out.empty()) push(std::move(out));
}

void LayerStream::produce_zstd(int fd) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) throw Error(Errc::internal, "ZSTD_createDCtx failed");
  std::string in(kChunk, '\0');
  size_t last = 0;  // 0 after a complete frame
  while (true) {
    size_t n = read_some(fd, in.data(), in.size(), name_);
    if (n == 0) break;
    ZSTD_inBuffer input{in.data(), n, 0};
    while (input.pos < input.size) {
      std::string out(kChunk, '\0');
      ZSTD_outBuffer output{out.data(), out.size(), 0};
      last = ZSTD_decompressStream(ctx.get(), &output, &input);
      if (ZSTD_isError(last))
        bad_data(name_, std::string("invalid zstd data: ") + ZSTD_getErrorName(last));
      out.resize(output.pos);
      if (!out.empty() && !push(std::move(out))) return;
    }
  }
  // Flush what the decoder still holds for a frame fed completely.
  while (last != 0) {
    std::string out(kChunk, '\0');
    ZSTD_inBuffer input{nullptr, 0, 0};
    ZSTD_outBuffer output{out.data(), out.size(), 0};
    size_t before = last;
    last = ZSTD_decompressStream(ctx.get(), &output, &input);
    if (ZSTD_isError(last))
      bad_data(name_, std::string("invalid zstd data: ") + ZSTD_getErrorName(last));
    if (output.pos == 0 && last == before)
      bad_data(name_, "the zstd stream ends early (truncated layer)");
    out.resize(output.pos);
    if (!out.empty() && !push(std::move(out))) return;
  }
}

namespace {

la_ssize_t read_callback(struct archive* a, void* client, const void** buffer) {
  try {
    std::string_view chunk = static_cast<LayerStream*>(client)->next();
    *buffer = chunk.data();
    return static_cast<la_ssize_t>(chunk.size());
  } catch (const std::exception& e) {
    archive_set_error(a, EIO, "%s", e.what());
    return -1;
  }
}

}  // namespace

std::string archive_error(struct archive* a) {
  const char* text = archive_error_string(a);
  return text ? text : "unknown error";
}

std::shared_ptr<struct archive> open_layer_tar(const std::filesystem::path& file,
                                               LayerCompression compression,
                                               const std::string& name) {
  auto stream = std::make_shared<LayerStream>(file, compression, name);
  // The reader's deleter keeps the stream alive until the reader is freed.
  std::shared_ptr<struct archive> a(archive_read_new(),
                                    [stream](struct archive* p) { archive_read_free(p); });
  if (!a) throw Error(Errc::internal, "archive_read_new failed");
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open(a.get(), stream.get(), nullptr, read_callback, nullptr) != ARCHIVE_OK) {
    bad_data(name, std::string("not a tar archive: ") + archive_error(a.get()));
  }
  return a;
}

}  // namespace deepops
