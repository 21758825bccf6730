#include "image/tree_snapshot.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <vector>

#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops {
namespace {

class Snapshot {
 public:
  Snapshot(SquashfsWriter& writer, dev_t dev) : writer_(writer), dev_(dev) {}

  void fill(int dir_fd, Node& dir, const std::string& where) {
    DIR* d = fdopendir(dup(dir_fd));
    if (!d) throw sys_error("cannot read " + where, errno);
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
    for (const auto& name : names) add(dir_fd, name, dir, where + "/" + name);
  }

 private:
  void add(int dir_fd, const std::string& name, Node& parent, const std::string& where) {
    struct stat st {};
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      throw sys_error("cannot stat " + where, errno);
    }
    auto node = std::make_unique<Node>();
    node->mode = st.st_mode & 0777 & ~static_cast<uint32_t>(S_ISUID | S_ISGID);
    node->mode |= st.st_mode & S_ISVTX;
    node->mtime = st.st_mtim.tv_sec;
    if (S_ISDIR(st.st_mode)) {
      node->type = NodeType::directory;
      if (st.st_dev == dev_) {  // a mount inside is left out, its mountpoint kept
        UniqueFd sub(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) throw sys_error("cannot open " + where, errno);
        fill(sub.get(), *node, where);
      }
    } else if (S_ISREG(st.st_mode)) {
      node->type = NodeType::regular;
      node->content = content_of(dir_fd, name, st, where);
    } else if (S_ISLNK(st.st_mode)) {
      node->type = NodeType::symlink;
      node->link_target = read_link(dir_fd, name, where);
    } else if (S_ISFIFO(st.st_mode)) {
      node->type = NodeType::fifo;
    } else {
      return;  // devices and sockets: as an import would, leave them out
    }
    parent.children[name] = std::move(node);
  }

  std::shared_ptr<FileContent> content_of(int dir_fd, const std::string& name,
                                          const struct stat& st, const std::string& where) {
    auto key = std::make_pair(st.st_dev, st.st_ino);
    if (st.st_nlink > 1) {
      if (auto it = links_.find(key); it != links_.end()) return it->second;
    }
    UniqueFd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) throw sys_error("cannot read " + where, errno);
    auto content = writer_.begin_file();
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd.get(), buf, sizeof(buf))) > 0) writer_.append(buf, static_cast<size_t>(n));
    if (n < 0) throw sys_error("cannot read " + where, errno);
    writer_.end_file();
    if (st.st_nlink > 1) links_[key] = content;
    return content;
  }

  static std::string read_link(int dir_fd, const std::string& name, const std::string& where) {
    std::vector<char> buf(4096);
    ssize_t n = readlinkat(dir_fd, name.c_str(), buf.data(), buf.size());
    if (n < 0) throw sys_error("cannot read the link " + where, errno);
    return std::string(buf.data(), static_cast<size_t>(n));
  }

  SquashfsWriter& writer_;
  dev_t dev_;
  std::map<std::pair<dev_t, ino_t>, std::shared_ptr<FileContent>> links_;
};

}  // namespace

void snapshot_to_squashfs(const std::filesystem::path& dir, const std::filesystem::path& out,
                          const SquashfsOptions& options) {
  UniqueFd root(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) throw sys_error("cannot open " + dir.string(), errno);
  struct stat st {};
  fstat(root.get(), &st);
  SquashfsWriter writer(out, options);
  Node top;
  top.mode = st.st_mode & 0777;
  top.mtime = st.st_mtim.tv_sec;
  Snapshot(writer, st.st_dev).fill(root.get(), top, "");
  writer.finish(top);
}

}  // namespace deepops
