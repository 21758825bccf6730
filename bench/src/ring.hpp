#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "datatype.hpp"

namespace deepops::bench {

// A socket descriptor, closed when it goes.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// The ranks of a run joined in a ring over TCP: each sends to the next and
// receives from the previous. Built through a rendezvous at rank 0, which
// listens on host:port; every other rank connects there, tells its own ring
// port, and gets everyone's address back. Errors throw std::runtime_error
// naming the rank and the address.
class Ring {
 public:
  // `listener`: for rank 0, a socket already listening on `port` (-1: bind it).
  // `run`: the same number on every rank of one run, and on no other's.
  static Ring join(int rank, int size, const std::string& host, int port,
                   std::chrono::seconds timeout, int listener = -1, uint64_t run = 0);
  int rank() const { return rank_; }
  int size() const { return size_; }

  // In-place all-reduce: a ring reduce-scatter, then an all-gather, each
  // chunk moved in segments so that reducing one overlaps receiving the next.
  void allreduce(void* data, size_t count, DataType t, RedOp op);
  // Out of place: `send` stays as it was; `recv` gets the result.
  void allreduce(const void* send, void* recv, size_t count, DataType t, RedOp op);
  void barrier();
  // Test-only: every all-reduce then damages one element of its result.
  void corrupt_results(bool on) { corrupt_ = on; }

 private:
  Ring(int rank, int size) : rank_(rank), size_(size) {}
  int next_rank() const { return (rank_ + 1) % size_; }
  int prev_rank() const { return (rank_ + size_ - 1) % size_; }
  [[noreturn]] void lost_peer(int peer, const char* which, int error) const;
  void exchange(const char* send, size_t send_bytes, char* recv, size_t recv_bytes,
                const std::function<void(size_t, size_t)>& on_received);

  int rank_;
  int size_;
  Socket next_;  // we send here
  Socket prev_;  // we receive from here
  std::vector<char> scratch_;
  bool corrupt_ = false;
};

// Rank 0's `bytes` bytes at `data`, copied to every rank.
void broadcast_bytes(Ring& ring, void* data, size_t bytes);
// Every rank's `text` (cut at `limit` bytes), in rank order, at every rank.
std::vector<std::string> gather_text(Ring& ring, const std::string& text, size_t limit = 1024);

// A TCP socket listening on `port` on every address (0: a free port), and
// the port it got.
std::pair<Socket, int> listen_on(int port);

}  // namespace deepops::bench
