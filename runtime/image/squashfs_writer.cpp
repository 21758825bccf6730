#include "image/squashfs_writer.hpp"

#include <fcntl.h>
#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>
#include <sqfs/xattr.h>
#include <sqfs/xattr_writer.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace deepops {

// Defined here rather than in a header: only the writer looks inside.
class FileContent {
 public:
  explicit FileContent(const void* owner) : writer(owner) {}
  ~FileContent() { sqfs_free(inode); }
  FileContent(const FileContent&) = delete;
  FileContent& operator=(const FileContent&) = delete;

  const void* const writer;  // finish() refuses content from another writer
  // The block processor creates this inode, and keeps updating (and may
  // reallocate) it through its address until the processor has finished.
  sqfs_inode_generic_t* inode = nullptr;
  bool complete = false;  // end_file() ran
};

namespace {

constexpr uint32_t kNoXattr = 0xFFFFFFFF;
constexpr size_t kMaxName = 256;                            // the kernel's SQUASHFS_NAME_LEN
constexpr size_t kMaxLinkTarget = 4095;                     // PATH_MAX without its NUL
constexpr uint64_t kDeviceBlock = 4096;                     // mksquashfs pads images to this
constexpr uint32_t kMaxMajor = 0xFFF, kMaxMinor = 0xFFFFF;  // 32-bit device numbers

struct DestroyObject {
  void operator()(void* object) const noexcept { sqfs_destroy(object); }
};
struct FreeLibraryMemory {
  void operator()(void* block) const noexcept { sqfs_free(block); }
};
struct FreeOurMemory {
  void operator()(void* block) const noexcept { std::free(block); }
};
template <typename T>
using Object = std::unique_ptr<T, DestroyObject>;

// ---- the image file

// Our own sqfs_file_t rather than sqfs_open_file()'s, so that the errno of a
// failed write is kept for the error message (ENOSPC becomes no_space).
// libsquashfs does all file I/O from the thread that calls into it.
struct ImageFile {
  sqfs_file_t base;  // first, so that libsquashfs's pointer is ours
  int fd = -1;
  uint64_t size = 0;
  int last_errno = 0;
};

ImageFile* image_of(sqfs_file_t* file) { return reinterpret_cast<ImageFile*>(file); }

int io_failed(ImageFile* image) {
  image->last_errno = errno;
  return SQFS_ERROR_IO;
}

int image_read_at(sqfs_file_t* file, sqfs_u64 offset, void* buffer, size_t size) {
  ImageFile* image = image_of(file);
  auto* out = static_cast<char*>(buffer);
  while (size > 0) {
    ssize_t got = ::pread(image->fd, out, size, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return io_failed(image);
    if (got == 0) return SQFS_ERROR_OUT_OF_BOUNDS;
    out += got, offset += static_cast<uint64_t>(got), size -= static_cast<size_t>(got);
  }
  return 0;
}

int image_write_at(sqfs_file_t* file, sqfs_u64 offset, const void* buffer, size_t size) {
  ImageFile* image = image_of(file);
  auto* in = static_cast<const char*>(buffer);
  while (size > 0) {
    ssize_t put = ::pwrite(image->fd, in, size, static_cast<off_t>(offset));
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return io_failed(image);
    in += put, offset += static_cast<uint64_t>(put), size -= static_cast<size_t>(put);
  }
  image->size = std::max(image->size, offset);
  return 0;
}

sqfs_u64 image_get_size(const sqfs_file_t* file) {
  return reinterpret_cast<const ImageFile*>(file)->size;
}

int image_truncate(sqfs_file_t* file, sqfs_u64 size) {
  ImageFile* image = image_of(file);
  if (::ftruncate(image->fd, static_cast<off_t>(size)) != 0) return io_failed(image);
  image->size = size;
  return 0;
}

void image_destroy(sqfs_object_t* object) {
  ImageFile* image = reinterpret_cast<ImageFile*>(object);
  if (image->fd >= 0) ::close(image->fd);
  delete image;
}

// Takes ownership of `fd`.
ImageFile* new_image_file(int fd) {
  auto* image = new (std::nothrow) ImageFile{};
  if (!image) {
    ::close(fd);
    throw std::bad_alloc();
  }
  image->base.base.destroy = image_destroy;
  image->base.read_at = image_read_at;
  image->base.write_at = image_write_at;
  image->base.get_size = image_get_size;
  image->base.truncate = image_truncate;
  image->fd = fd;
  return image;
}

// ---- compression

// Wraps libsquashfs's compressor so that a block that does not shrink is
// stored raw. libsquashfs's lz4 returns results larger than their input,
// which unsquashfs rejects as corrupt (a 4-byte id table becomes 5 bytes).
// Without an inner compressor (compression none) nothing is compressed: a
// result of 0 means "store raw" for data, fragment and metadata blocks alike.
struct StoringCompressor {
  sqfs_compressor_t base;              // first, so that libsquashfs's pointer is ours
  sqfs_compressor_t* inner = nullptr;  // owned
  uint32_t block_size = 0;
};

const StoringCompressor* storing_of(const void* cmp) {
  return static_cast<const StoringCompressor*>(cmp);
}

void storing_get_configuration(const sqfs_compressor_t* cmp, sqfs_compressor_config_t* cfg) {
  const StoringCompressor* self = storing_of(cmp);
  if (self->inner) return self->inner->get_configuration(self->inner, cfg);
  sqfs_compressor_config_init(cfg, SQFS_COMP_GZIP, self->block_size, 0);
}

int storing_write_options(sqfs_compressor_t* cmp, sqfs_file_t* file) {
  sqfs_compressor_t* inner = storing_of(cmp)->inner;
  return inner ? inner->write_options(inner, file) : 0;
}

int storing_read_options(sqfs_compressor_t* cmp, sqfs_file_t* file) {
  sqfs_compressor_t* inner = storing_of(cmp)->inner;
  return inner ? inner->read_options(inner, file) : 0;
}

sqfs_s32 storing_do_block(sqfs_compressor_t* cmp, const sqfs_u8* in, sqfs_u32 size, sqfs_u8* out,
                          sqfs_u32 outsize) {
  sqfs_compressor_t* inner = storing_of(cmp)->inner;
  if (!inner) return 0;
  sqfs_s32 result = inner->do_block(inner, in, size, out, outsize);
  return result >= 0 && static_cast<sqfs_u32>(result) >= size ? 0 : result;
}

void storing_destroy(sqfs_object_t* object) {
  auto* self = reinterpret_cast<StoringCompressor*>(object);
  sqfs_destroy(self->inner);
  delete self;
}

// The block processor gives each worker thread its own copy.
sqfs_object_t* storing_copy(const sqfs_object_t* object) {
  const StoringCompressor* self = storing_of(object);
  sqfs_compressor_t* inner = nullptr;
  if (self->inner) {
    inner = static_cast<sqfs_compressor_t*>(sqfs_copy(self->inner));
    if (!inner) return nullptr;
  }
  auto* copy = new (std::nothrow) StoringCompressor(*self);
  if (!copy) {
    sqfs_destroy(inner);
    return nullptr;
  }
  copy->inner = inner;
  return &copy->base.base;
}

// Takes ownership of `inner`, which may be null.
sqfs_compressor_t* new_storing_compressor(sqfs_compressor_t* inner, uint32_t block_size) {
  auto* cmp = new (std::nothrow) StoringCompressor{};
  if (!cmp) {
    sqfs_destroy(inner);
    throw std::bad_alloc();
  }
  cmp->base.base.destroy = storing_destroy;
  cmp->base.base.copy = storing_copy;
  cmp->base.get_configuration = storing_get_configuration;
  cmp->base.write_options = storing_write_options;
  cmp->base.read_options = storing_read_options;
  cmp->base.do_block = storing_do_block;
  cmp->inner = inner;
  cmp->block_size = block_size;
  return &cmp->base;
}

SQFS_COMPRESSOR compressor_id(SquashfsCompression compression) {
  switch (compression) {
    case SquashfsCompression::zstd:
      return SQFS_COMP_ZSTD;
    case SquashfsCompression::lz4:
      return SQFS_COMP_LZ4;
    case SquashfsCompression::xz:
      return SQFS_COMP_XZ;
    case SquashfsCompression::gzip:
    case SquashfsCompression::none:
      return SQFS_COMP_GZIP;
  }
  return SQFS_COMP_GZIP;
}

[[noreturn]] void bad_option(const std::string& what, std::string hint = {}) {
  throw Error(Errc::invalid_argument, "squashfs writer: " + what, std::move(hint));
}

void check_level(const SquashfsOptions& o, int low, int high, const char* name) {
  if (o.level == 0 || (o.level >= low && o.level <= high)) return;
  bad_option("compression level " + std::to_string(o.level) + " is out of range for " + name,
             "choose " + std::to_string(low) + " to " + std::to_string(high) + ", or 0");
}

void validate(const SquashfsOptions& o) {
  uint32_t b = o.block_size;
  if (b < SQFS_MIN_BLOCK_SIZE || b > SQFS_MAX_BLOCK_SIZE || (b & (b - 1)) != 0) {
    bad_option("block size " + std::to_string(b) + " is invalid",
               "choose a power of two from 4096 to 1048576");
  }
  if (o.level < 0) bad_option("compression level " + std::to_string(o.level) + " is negative");
  if (o.compression == SquashfsCompression::zstd) check_level(o, 1, SQFS_ZSTD_MAX_LEVEL, "zstd");
  if (o.compression == SquashfsCompression::gzip) check_level(o, 1, SQFS_GZIP_MAX_LEVEL, "gzip");
  if (o.compression == SquashfsCompression::xz) check_level(o, 1, SQFS_XZ_MAX_LEVEL, "xz");
}

sqfs_compressor_config_t compressor_config(const SquashfsOptions& o, bool uncompress) {
  sqfs_compressor_config_t cfg{};
  sqfs_u16 flags = uncompress ? SQFS_COMP_FLAG_UNCOMPRESS : 0;
  if (o.compression == SquashfsCompression::lz4 && o.level > 0) flags |= SQFS_COMP_FLAG_LZ4_HC;
  sqfs_compressor_config_init(&cfg, compressor_id(o.compression), o.block_size, flags);
  bool has_levels = o.compression != SquashfsCompression::lz4;
  if (has_levels && o.level > 0) cfg.level = static_cast<sqfs_u32>(o.level);
  // Defaults chosen by measurement (bench/compression.sh, bench/README.md):
  // libsquashfs's zstd default (15) costs several times the CPU of level 1,
  // which imported the 3.2 GB image 11% faster than level 3 for 4% more size;
  // its gzip default (9) took 195 s where zlib's usual 6 is far cheaper.
  if (o.compression == SquashfsCompression::zstd && o.level == 0) cfg.level = 1;
  if (o.compression == SquashfsCompression::gzip && o.level == 0) cfg.level = 6;
  return cfg;
}

const char* describe_sqfs_error(int code) {
  switch (code) {
    case SQFS_ERROR_ALLOC:
      return "out of memory";
    case SQFS_ERROR_IO:
      return "I/O error";
    case SQFS_ERROR_COMPRESSOR:
      return "the compressor failed";
    case SQFS_ERROR_UNSUPPORTED:
      return "unsupported by libsquashfs";
    case SQFS_ERROR_OVERFLOW:
      return "a size or count overflows the squashfs format";
    case SQFS_ERROR_ARG_INVALID:
      return "invalid argument";
    case SQFS_ERROR_SEQUENCE:
      return "calls out of sequence";
    default:
      return "libsquashfs error";
  }
}

Error io_error(int err, const std::string& prefix, const std::filesystem::path& path) {
  std::string message = prefix + std::strerror(err);
  std::string folder = path.parent_path().empty() ? "." : path.parent_path().string();
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return Error(Errc::no_space, message,
                   "free " + exhausted_resource(folder) + " on the file system of " + folder +
                       " or choose another cache folder");
    case EFBIG:
      return Error(Errc::no_space, message,
                   "the image outgrew the file size limit (ulimit -f): raise it");
    case EACCES:
    case EPERM:
    case EROFS:
      return Error(Errc::permission_denied, message, "choose a cache folder that you can write to");
    case ENOENT:
    case ENOTDIR:
      return Error(Errc::not_found, message, "create " + folder + " first");
    default:
      return Error(Errc::internal, message);
  }
}

// ---- inodes

uint16_t type_bits(NodeType type) {
  switch (type) {
    case NodeType::directory:
      return SQFS_INODE_MODE_DIR;
    case NodeType::regular:
      return SQFS_INODE_MODE_REG;
    case NodeType::symlink:
      return SQFS_INODE_MODE_LNK;
    case NodeType::fifo:
      return SQFS_INODE_MODE_FIFO;
    case NodeType::socket:
      return SQFS_INODE_MODE_SOCK;
    case NodeType::char_device:
      return SQFS_INODE_MODE_CHR;
    case NodeType::block_device:
      return SQFS_INODE_MODE_BLK;
  }
  return 0;
}

// Permission and type bits: the directory writer derives each entry's type
// from the latter.
uint16_t full_mode(const Node& node) {
  return static_cast<uint16_t>(type_bits(node.type) | (node.mode & 07777));
}

// squashfs times are unsigned 32-bit seconds: clamp what does not fit.
uint32_t squashfs_time(int64_t t) {
  return static_cast<uint32_t>(std::clamp<int64_t>(t, 0, std::numeric_limits<uint32_t>::max()));
}

// The kernel's new_encode_dev(), which squashfs readers decode.
uint32_t device_number(const Node& node) {
  return (node.rdev_minor & 0xFF) | (node.rdev_major << 8) | ((node.rdev_minor & ~0xFFu) << 12);
}

using OurInode = std::unique_ptr<sqfs_inode_generic_t, FreeOurMemory>;

OurInode new_inode(size_t extra_bytes) {
  void* block = std::calloc(1, sizeof(sqfs_inode_generic_t) + extra_bytes);
  if (!block) throw std::bad_alloc();
  return OurInode(static_cast<sqfs_inode_generic_t*>(block));
}

// A leaf other than a regular file: built here, with no xattrs yet.
OurInode special_inode(const Node& node) {
  bool symlink = node.type == NodeType::symlink;
  OurInode inode = new_inode(symlink ? node.link_target.size() : 0);
  switch (node.type) {
    case NodeType::symlink: {
      auto size = static_cast<uint32_t>(node.link_target.size());
      inode->base.type = SQFS_INODE_SLINK;
      inode->data.slink = {1, size};
      inode->payload_bytes_available = inode->payload_bytes_used = size;
      std::memcpy(inode->extra, node.link_target.data(), size);
      break;
    }
    case NodeType::fifo:
    case NodeType::socket:
      inode->base.type = node.type == NodeType::fifo ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET;
      inode->data.ipc = {1};
      break;
    default:
      inode->base.type = node.type == NodeType::char_device ? SQFS_INODE_CDEV : SQFS_INODE_BDEV;
      inode->data.dev = {1, device_number(node)};
      break;
  }
  return inode;
}

std::string join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

}  // namespace

// ---- the writer's state

namespace detail {

struct SquashfsWriterImpl {
  SquashfsWriterImpl(const std::filesystem::path& image_path, const SquashfsOptions& opts);
  ~SquashfsWriterImpl();
  SquashfsWriterImpl(const SquashfsWriterImpl&) = delete;
  SquashfsWriterImpl& operator=(const SquashfsWriterImpl&) = delete;

  [[noreturn]] void fail(Error error);
  [[noreturn]] void fail(int code, const std::string& step);
  void check(int ret, const std::string& step) {
    if (ret < 0) fail(ret, step);
  }
  template <typename T>
  T* created(T* object, const std::string& what) {
    if (!object) fail(SQFS_ERROR_ALLOC, "creating the " + what);
    return object;
  }
  void ensure_usable() const;
  template <typename F>
  decltype(auto) guarded(F&& body);

  void open_image();
  void create_compressors();
  void write_header();
  void create_writers();
  std::shared_ptr<FileContent> begin_file();
  void append(const void* data, size_t size);
  void end_file();
  void finish(const Node& root);
  void write_tables(uint64_t root_ref, uint32_t inode_count, uint32_t mtime);
  void pad_and_sync();

  std::filesystem::path path;
  SquashfsOptions options;
  unsigned workers = 1;
  unsigned max_backlog = 10;

  // Declared in dependency order: each object only points to those above it,
  // and members are destroyed bottom up.
  Object<sqfs_file_t> file;
  ImageFile* image = nullptr;  // the same object as `file`
  Object<sqfs_compressor_t> cmp, uncmp;
  Object<sqfs_frag_table_t> fragments;
  Object<sqfs_block_writer_t> block_writer;
  Object<sqfs_id_table_t> ids;
  Object<sqfs_xattr_writer_t> xattrs;
  Object<sqfs_meta_writer_t> inode_table, dir_table;
  Object<sqfs_dir_writer_t> dir_writer;
  // Keeps every FileContent (and so the inode pointer the processor writes
  // through) alive as long as the processor, whatever the caller drops.
  std::vector<std::shared_ptr<FileContent>> files;
  Object<sqfs_block_processor_t> processor;

  sqfs_super_t super{};
  std::shared_ptr<FileContent> open_file;
  bool finished = false;
  std::optional<Error> failure;
};

}  // namespace detail

using Impl = detail::SquashfsWriterImpl;

void Impl::fail(Error error) {
  failure = error;
  throw error;
}

void Impl::fail(int code, const std::string& step) {
  std::string prefix = "writing squashfs image " + path.string() + ": " + step + " failed: ";
  if (code == SQFS_ERROR_IO && image && image->last_errno != 0) {
    fail(io_error(image->last_errno, prefix, path));
  }
  fail(Error(Errc::internal,
             prefix + describe_sqfs_error(code) + " (" + std::to_string(code) + ")"));
}

void Impl::ensure_usable() const {
  if (failure) throw *failure;
  if (finished) throw Error(Errc::internal, "squashfs writer used after finish()");
}

// Everything a public method throws is an Error: libsquashfs failures are
// converted where they happen, and this catches the rest (std::bad_alloc).
template <typename F>
decltype(auto) Impl::guarded(F&& body) {
  ensure_usable();
  try {
    return body();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(Error(Errc::internal, "writing squashfs image " + path.string() + ": " + e.what()));
  }
}

Impl::SquashfsWriterImpl(const std::filesystem::path& image_path, const SquashfsOptions& opts)
    : path(image_path), options(opts) {
  validate(options);
  workers = options.workers ? options.workers : std::max(1u, std::thread::hardware_concurrency());
  open_image();
  create_compressors();
  write_header();
  create_writers();
}

// libsquashfs 1.2 frees the blocks it holds when destroyed, but not those
// still queued in its thread pool: drain them first, writing them out. A
// failing sync still consumes the block that failed, so a bounded number of
// tries drains the queue even when every write fails (a full disk).
Impl::~SquashfsWriterImpl() {
  if (!processor) return;
  for (unsigned tries = 0; tries < max_backlog + 4; ++tries) {
    if (sqfs_block_processor_sync(processor.get()) == 0) break;
  }
}

void Impl::open_image() {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw io_error(errno, "creating squashfs image " + path.string() + ": ", path);
  image = new_image_file(fd);
  file.reset(&image->base);
}

// The decompressor lets fragment deduplication read blocks back; with
// compression none it is never used, the blocks being raw.
void Impl::create_compressors() {
  sqfs_compressor_t* made = nullptr;
  sqfs_compressor_config_t cfg = compressor_config(options, true);
  check(sqfs_compressor_create(&cfg, &made), "creating the decompressor");
  uncmp.reset(made);
  made = nullptr;
  if (options.compression != SquashfsCompression::none) {
    cfg = compressor_config(options, false);
    check(sqfs_compressor_create(&cfg, &made), "creating the compressor");
  }
  cmp.reset(new_storing_compressor(made, options.block_size));
}

// Reserves the super block (rewritten by finish()) and writes the compressor
// options behind it; data blocks follow.
void Impl::write_header() {
  check(sqfs_super_init(&super, options.block_size, 0, compressor_id(options.compression)),
        "initializing the super block");
  check(sqfs_super_write(&super, file.get()), "writing the super block");
  int written = cmp->write_options(cmp.get(), file.get());
  check(written, "writing the compressor options");
  if (written > 0) super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;
}

void Impl::create_writers() {
  fragments.reset(created(sqfs_frag_table_create(0), "fragment table"));
  block_writer.reset(
      created(sqfs_block_writer_create(file.get(), kDeviceBlock, 0), "block writer"));
  ids.reset(created(sqfs_id_table_create(0), "id table"));
  xattrs.reset(created(sqfs_xattr_writer_create(0), "xattr writer"));
  inode_table.reset(created(sqfs_meta_writer_create(file.get(), cmp.get(), 0), "inode writer"));
  // The directory table follows the inode table, which goes straight to the
  // file, so directories wait in memory.
  dir_table.reset(
      created(sqfs_meta_writer_create(file.get(), cmp.get(), SQFS_META_WRITER_KEEP_IN_MEMORY),
              "directory table writer"));
  dir_writer.reset(created(sqfs_dir_writer_create(dir_table.get(), 0), "directory writer"));

  sqfs_block_processor_desc_t desc{};
  desc.size = sizeof(desc);
  desc.max_block_size = options.block_size;
  desc.num_workers = workers;
  // Bounds memory (a few block buffers per block in flight) whatever the
  // file sizes, while keeping every worker busy.
  max_backlog = std::max(10u, 4 * workers);
  desc.max_backlog = max_backlog;
  desc.cmp = cmp.get();
  desc.wr = block_writer.get();
  desc.tbl = fragments.get();
  // Lets fragment deduplication compare bytes, not only hashes.
  desc.file = file.get();
  desc.uncmp = uncmp.get();
  sqfs_block_processor_t* made = nullptr;
  check(sqfs_block_processor_create_ex(&desc, &made), "starting the block processor");
  processor.reset(made);
}

std::shared_ptr<FileContent> Impl::begin_file() {
  if (open_file) throw Error(Errc::internal, "squashfs writer: begin_file() with a file open");
  auto content = std::make_shared<FileContent>(this);
  files.push_back(content);
  check(sqfs_block_processor_begin_file(processor.get(), &content->inode, nullptr, 0),
        "starting a file");
  open_file = content;
  return content;
}

void Impl::append(const void* data, size_t size) {
  if (!open_file) throw Error(Errc::internal, "squashfs writer: append() with no file open");
  if (size == 0) return;
  check(sqfs_block_processor_append(processor.get(), data, size), "writing file data");
}

void Impl::end_file() {
  if (!open_file) throw Error(Errc::internal, "squashfs writer: end_file() with no file open");
  check(sqfs_block_processor_end_file(processor.get()), "ending a file");
  open_file->complete = true;
  open_file.reset();
}

// ---- finish(): the tree

namespace {

// Serializes the tree in two walks. The first validates it and numbers the
// inodes (a directory's entries get consecutive numbers, which keeps its
// directory headers few); the second writes the inodes bottom up, since a
// directory's entries need the on-disk location of each child's inode.
class TreeWriter {
 public:
  explicit TreeWriter(Impl& writer) : w_(writer) {}

  // Returns the reference of the root inode.
  uint64_t write(const Node& root);
  uint32_t inode_count() const { return next_ino_ - 1; }
  uint32_t newest_mtime() const { return newest_mtime_; }

 private:
  struct Entry {
    const std::string* name;
    uint32_t ino;
    uint64_t ref;
    uint16_t mode;
  };
  struct Link {  // one regular-file inode, shared by its hard links
    uint32_t ino;
    uint32_t nlink;
    const Node* first;
    std::optional<uint64_t> ref;  // once written
  };

  [[noreturn]] void invalid(const std::string& path, const std::string& what) const;
  void number_children(const Node& dir, const std::string& path);
  void validate(const Node& node, const std::string& name, const std::string& path) const;
  void validate_content(const Node& node, const std::string& path) const;
  void validate_xattrs(const Node& node, const std::string& path) const;

  Entry write_dir(const Node& dir, uint32_t ino, uint32_t parent_ino, const std::string& path);
  void list_directory(const std::vector<Entry>& entries, const std::string& path);
  Entry write_leaf(const Node& node, const std::string& path);
  Entry write_file(const Node& node, const std::string& path);
  uint32_t xattr_index(const Node& node, const std::string& path);
  void set_base(sqfs_inode_generic_t& inode, const Node& node, uint32_t ino,
                const std::string& path);
  uint64_t write_inode(const sqfs_inode_generic_t& inode, const std::string& path);

  Impl& w_;
  std::unordered_map<const Node*, uint32_t> numbers_;  // all but regular files
  std::unordered_map<const FileContent*, Link> links_;
  uint32_t next_ino_ = 1;
  uint32_t newest_mtime_ = 0;
};

void TreeWriter::invalid(const std::string& path, const std::string& what) const {
  throw Error(Errc::invalid_argument,
              "writing squashfs image " + w_.path.string() + ": " + path + ": " + what);
}

uint64_t TreeWriter::write(const Node& root) {
  if (!root.is_dir()) invalid("/", "the root is not a directory");
  validate_xattrs(root, "/");
  uint32_t root_ino = numbers_[&root] = next_ino_++;
  newest_mtime_ = squashfs_time(root.mtime);
  number_children(root, "/");
  // The root's ".." is the root itself, as on any mounted file system.
  return write_dir(root, root_ino, root_ino, "/").ref;
}

void TreeWriter::number_children(const Node& dir, const std::string& path) {
  for (const auto& [name, child] : dir.children) {
    std::string child_path = join(path, name);
    if (!child) invalid(child_path, "null node");
    validate(*child, name, child_path);
    newest_mtime_ = std::max(newest_mtime_, squashfs_time(child->mtime));
    if (child->type != NodeType::regular) {
      numbers_[child.get()] = next_ino_++;
      continue;
    }
    auto [link, inserted] =
        links_.try_emplace(child->content.get(), Link{next_ino_, 0, child.get(), {}});
    if (inserted) ++next_ino_;
    ++link->second.nlink;
  }
  for (const auto& [name, child] : dir.children) {
    if (child->is_dir()) number_children(*child, join(path, name));
  }
}

void TreeWriter::validate(const Node& node, const std::string& name,
                          const std::string& path) const {
  if (name.empty() || name == "." || name == ".." || name.size() > kMaxName ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
    invalid(path, "invalid entry name (empty, '.', '..', over 256 bytes, or with '/' or NUL)");
  }
  validate_xattrs(node, path);
  if (node.type == NodeType::regular) validate_content(node, path);
  if (node.type == NodeType::symlink && (node.link_target.size() > kMaxLinkTarget ||
                                         node.link_target.find('\0') != std::string::npos)) {
    invalid(path, "symlink target longer than 4095 bytes or with a NUL byte");
  }
  bool device = node.type == NodeType::char_device || node.type == NodeType::block_device;
  if (device && (node.rdev_major > kMaxMajor || node.rdev_minor > kMaxMinor)) {
    invalid(path, "device number " + std::to_string(node.rdev_major) + ":" +
                      std::to_string(node.rdev_minor) + " does not fit squashfs's 32 bits");
  }
}

void TreeWriter::validate_content(const Node& node, const std::string& path) const {
  const FileContent* content = node.content.get();
  if (!content) invalid(path, "regular file without content");
  if (content->writer != &w_) invalid(path, "file content written by another SquashfsWriter");
  if (!content->complete) invalid(path, "file content not ended with end_file()");
}

void TreeWriter::validate_xattrs(const Node& node, const std::string& path) const {
  for (const auto& [key, value] : node.xattrs) {
    int prefix = sqfs_get_xattr_prefix_id(key.c_str());
    bool bare_prefix =
        prefix >= 0 &&
        key.size() <= std::strlen(sqfs_get_xattr_prefix(static_cast<SQFS_XATTR_TYPE>(prefix)));
    if (prefix < 0 || bare_prefix || key.find('\0') != std::string::npos) {
      invalid(path, "xattr '" + key +
                        "' cannot be stored in squashfs (only user., trusted. and security. "
                        "names can)");
    }
  }
}

TreeWriter::Entry TreeWriter::write_dir(const Node& dir, uint32_t ino, uint32_t parent_ino,
                                        const std::string& path) {
  std::vector<Entry> entries;
  entries.reserve(dir.children.size());
  size_t subdirs = 0;
  for (const auto& [name, child] : dir.children) {
    std::string child_path = join(path, name);
    if (child->is_dir()) {
      entries.push_back(write_dir(*child, numbers_.at(child.get()), ino, child_path));
      ++subdirs;
    } else {
      entries.push_back(write_leaf(*child, child_path));
    }
    entries.back().name = &name;
  }
  list_directory(entries, path);
  uint32_t xattr = xattr_index(dir, path);
  std::unique_ptr<sqfs_inode_generic_t, FreeLibraryMemory> inode(
      sqfs_dir_writer_create_inode(w_.dir_writer.get(), 0, xattr, parent_ino));
  if (!inode) w_.fail(SQFS_ERROR_ALLOC, "creating the inode of " + path);
  // libsquashfs 1.2 counts every entry as a link; "." and ".." of each
  // subdirectory are what count.
  auto nlink = static_cast<uint32_t>(2 + subdirs);
  if (inode->base.type == SQFS_INODE_EXT_DIR) {
    inode->data.dir_ext.nlink = nlink;
  } else {
    inode->data.dir.nlink = nlink;
  }
  set_base(*inode, dir, ino, path);
  return {nullptr, ino, write_inode(*inode, path), full_mode(dir)};
}

// Entries arrive sorted byte-wise (std::string's order), as squashfs wants.
void TreeWriter::list_directory(const std::vector<Entry>& entries, const std::string& path) {
  sqfs_dir_writer_t* dw = w_.dir_writer.get();
  w_.check(sqfs_dir_writer_begin(dw, 0), "starting directory " + path);
  for (const Entry& e : entries) {
    w_.check(sqfs_dir_writer_add_entry(dw, e.name->c_str(), e.ino, e.ref, e.mode),
             "listing " + join(path, *e.name));
  }
  w_.check(sqfs_dir_writer_end(dw), "ending directory " + path);
}

TreeWriter::Entry TreeWriter::write_leaf(const Node& node, const std::string& path) {
  if (node.type == NodeType::regular) return write_file(node, path);
  uint32_t ino = numbers_.at(&node);
  OurInode inode = special_inode(node);
  uint32_t xattr = xattr_index(node, path);
  if (xattr != kNoXattr) {
    w_.check(sqfs_inode_set_xattr_index(inode.get(), xattr), "setting the xattrs of " + path);
  }
  set_base(*inode, node, ino, path);
  return {nullptr, ino, write_inode(*inode, path), full_mode(node)};
}

// A hard-linked file is written once, at its first link met here, with the
// metadata of the link the first walk met first.
TreeWriter::Entry TreeWriter::write_file(const Node& node, const std::string& path) {
  Link& link = links_.at(node.content.get());
  const Node& meta = *link.first;
  if (link.ref) return {nullptr, link.ino, *link.ref, full_mode(meta)};
  sqfs_inode_generic_t* inode = node.content->inode;
  if (!inode) w_.fail(SQFS_ERROR_INTERNAL, "finding the inode of " + path);
  uint32_t xattr = xattr_index(meta, path);
  if (link.nlink > 1 || xattr != kNoXattr) {
    w_.check(sqfs_inode_make_extended(inode), "extending the inode of " + path);
  }
  if (inode->base.type == SQFS_INODE_EXT_FILE) {
    inode->data.file_ext.nlink = link.nlink;
    inode->data.file_ext.xattr_idx = xattr;
  }
  set_base(*inode, meta, link.ino, path);
  link.ref = write_inode(*inode, path);
  return {nullptr, link.ino, *link.ref, full_mode(meta)};
}

uint32_t TreeWriter::xattr_index(const Node& node, const std::string& path) {
  if (node.xattrs.empty()) return kNoXattr;
  sqfs_xattr_writer_t* xw = w_.xattrs.get();
  w_.check(sqfs_xattr_writer_begin(xw, 0), "starting the xattrs of " + path);
  for (const auto& [key, value] : node.xattrs) {
    w_.check(sqfs_xattr_writer_add(xw, key.c_str(), value.data(), value.size()),
             "adding xattr " + key + " of " + path);
  }
  uint32_t index = kNoXattr;
  w_.check(sqfs_xattr_writer_end(xw, &index), "ending the xattrs of " + path);
  return index;
}

void TreeWriter::set_base(sqfs_inode_generic_t& inode, const Node& node, uint32_t ino,
                          const std::string& path) {
  w_.check(sqfs_id_table_id_to_index(w_.ids.get(), node.uid, &inode.base.uid_idx),
           "registering uid " + std::to_string(node.uid) + " of " + path);
  w_.check(sqfs_id_table_id_to_index(w_.ids.get(), node.gid, &inode.base.gid_idx),
           "registering gid " + std::to_string(node.gid) + " of " + path);
  inode.base.mode = full_mode(node);
  inode.base.mod_time = squashfs_time(node.mtime);
  inode.base.inode_number = ino;
}

uint64_t TreeWriter::write_inode(const sqfs_inode_generic_t& inode, const std::string& path) {
  sqfs_u64 block = 0;
  sqfs_u32 offset = 0;
  sqfs_meta_writer_get_position(w_.inode_table.get(), &block, &offset);
  w_.check(sqfs_meta_writer_write_inode(w_.inode_table.get(), &inode),
           "writing the inode of " + path);
  return (block << 16) | offset;
}

}  // namespace

void Impl::finish(const Node& root) {
  if (open_file) throw Error(Errc::internal, "squashfs writer: finish() with a file open");
  finished = true;
  check(sqfs_block_processor_finish(processor.get()), "writing the last data blocks");
  super.inode_table_start = file->get_size(file.get());
  TreeWriter tree(*this);
  uint64_t root_ref = tree.write(root);
  write_tables(root_ref, tree.inode_count(), tree.newest_mtime());
  pad_and_sync();
}

// The layout after the data: inodes, directories, fragment, id and xattr
// tables, each recording its location in the super block.
void Impl::write_tables(uint64_t root_ref, uint32_t inode_count, uint32_t mtime) {
  check(sqfs_meta_writer_flush(inode_table.get()), "writing the inode table");
  super.directory_table_start = file->get_size(file.get());
  check(sqfs_meta_writer_flush(dir_table.get()), "writing the directory table");
  check(sqfs_meta_write_write_to_file(dir_table.get()), "writing the directory table");
  check(sqfs_frag_table_write(fragments.get(), file.get(), &super, cmp.get()),
        "writing the fragment table");
  check(sqfs_id_table_write(ids.get(), file.get(), &super, cmp.get()), "writing the id table");
  check(sqfs_xattr_writer_flush(xattrs.get(), file.get(), &super, cmp.get()),
        "writing the xattr table");
  super.inode_count = inode_count;
  super.root_inode_ref = root_ref;
  super.modification_time = mtime;
  super.bytes_used = file->get_size(file.get());
  if (options.compression == SquashfsCompression::none) {
    super.flags |= SQFS_FLAG_UNCOMPRESSED_INODES | SQFS_FLAG_UNCOMPRESSED_DATA |
                   SQFS_FLAG_UNCOMPRESSED_FRAGMENTS | SQFS_FLAG_UNCOMPRESSED_XATTRS |
                   SQFS_FLAG_UNCOMPRESSED_IDS;
  }
  check(sqfs_super_write(&super, file.get()), "writing the super block");
}

// Pads to 4 KiB as mksquashfs does (loop devices want whole blocks), and
// syncs: the caller may rename the image into a cache right after.
void Impl::pad_and_sync() {
  uint64_t size = file->get_size(file.get());
  uint64_t padded = (size + kDeviceBlock - 1) / kDeviceBlock * kDeviceBlock;
  std::vector<char> zeros(padded - size);
  check(file->write_at(file.get(), size, zeros.data(), zeros.size()), "padding the image");
  if (::fsync(image->fd) != 0) {
    fail(io_error(errno, "writing squashfs image " + path.string() + ": syncing failed: ", path));
  }
}

// ---- the public interface

SquashfsCompression parse_compression(std::string_view name) {
  static constexpr std::pair<std::string_view, SquashfsCompression> kNames[] = {
      {"zstd", SquashfsCompression::zstd}, {"lz4", SquashfsCompression::lz4},
      {"gzip", SquashfsCompression::gzip}, {"xz", SquashfsCompression::xz},
      {"none", SquashfsCompression::none},
  };
  for (const auto& [known, compression] : kNames) {
    if (name == known) return compression;
  }
  throw Error(Errc::invalid_argument, "unknown squashfs compression '" + std::string(name) + "'",
              "choose zstd, lz4, gzip, xz or none");
}

SquashfsWriter::SquashfsWriter(const std::filesystem::path& path, const SquashfsOptions& options) {
  try {
    impl_ = std::make_unique<Impl>(path, options);
  } catch (const std::bad_alloc&) {
    throw Error(Errc::internal, "writing squashfs image " + path.string() + ": out of memory");
  }
}

SquashfsWriter::~SquashfsWriter() = default;

std::shared_ptr<FileContent> SquashfsWriter::begin_file() {
  return impl_->guarded([&] { return impl_->begin_file(); });
}

void SquashfsWriter::append(const void* data, size_t size) {
  impl_->guarded([&] { impl_->append(data, size); });
}

void SquashfsWriter::end_file() {
  impl_->guarded([&] { impl_->end_file(); });
}

void SquashfsWriter::finish(const Node& root) {
  impl_->guarded([&] {
    try {
      impl_->finish(root);
    } catch (const Error& e) {
      // An invalid tree fails finish() for good as well: it was the one call.
      if (impl_->finished && !impl_->failure) impl_->failure = e;
      throw;
    }
  });
}

}  // namespace deepops
