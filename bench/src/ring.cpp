#include "ring.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace deepops::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kSegment = 1 << 20;  // bytes moved before the receiver reduces them

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

Socket tcp_socket() {
  Socket s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) fail("socket");
  int one = 1;
  setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return s;
}

std::pair<Socket, int> listen_any(int port) {
  Socket s = tcp_socket();
  int one = 1;
  setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    fail("cannot listen on port " + std::to_string(port));
  }
  if (listen(s.get(), 128) != 0) fail("listen");
  socklen_t len = sizeof(a);
  getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return {std::move(s), ntohs(a.sin_port)};
}

Socket accept_until(const Socket& listener, Clock::time_point deadline, const std::string& what) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) throw std::runtime_error("timed out waiting for " + what);
    pollfd p{listener.get(), POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    Socket s(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (s.get() < 0) fail("accept");
    int one = 1;
    setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return s;
  }
}

// Connects, retrying until the deadline: the peer may not listen yet.
Socket connect_until(const std::string& host, int port, Clock::time_point deadline) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) throw std::runtime_error("cannot resolve " + host + ": " + gai_strerror(rc));
  sockaddr_in addr{};
  std::memcpy(&addr, res->ai_addr, sizeof(addr));
  freeaddrinfo(res);
  for (;;) {
    Socket s = tcp_socket();
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return s;
    if (Clock::now() > deadline) fail("cannot connect to " + host + ":" + std::to_string(port));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void send_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("send");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void recv_all(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) throw std::runtime_error("a peer closed its connection (did a rank die?)");
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      throw std::runtime_error("a peer sent nothing in time (did a rank stop?)");
    }
    if (r < 0) fail("recv");
    p += r;
    n -= static_cast<size_t>(r);
  }
}

// Blocking reads on `fd` give up (EAGAIN) once `deadline` has passed.
void read_deadline(int fd, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  if (left.count() < 1000) left = std::chrono::microseconds(1000);
  timeval tv{static_cast<time_t>(left.count() / 1000000),
             static_cast<suseconds_t>(left.count() % 1000000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

// What a rank tells rank 0: who it is, where its ring socket listens, and the
// run it belongs to, so that a rank of another run that reached this port
// (two runs on one node, one port) is turned away, not let into the ring.
struct Hello {
  int32_t rank = 0;
  int32_t ring_port = 0;
  uint64_t run = 0;
};

struct PeerAddress {
  uint32_t ip = 0;  // network order; 0: rank 0's host
  uint16_t port = 0;
};

std::string ip_text(uint32_t ip) {
  char text[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = ip;
  inet_ntop(AF_INET, &a, text, sizeof(text));
  return text;
}

// Everyone's ring address, gathered by rank 0 and sent back to all.
std::vector<PeerAddress> rendezvous(int rank, int size, const std::string& host, int port,
                                    int ring_port, uint64_t run, Clock::time_point deadline,
                                    int given) {
  std::vector<PeerAddress> table(static_cast<size_t>(size));
  if (rank != 0) {
    Socket s = connect_until(host, port, deadline);
    read_deadline(s.get(), deadline);
    Hello hello{rank, ring_port, run};
    send_all(s.get(), &hello, sizeof(hello));
    recv_all(s.get(), table.data(), table.size() * sizeof(PeerAddress));
    return table;
  }
  Socket listener = given >= 0 ? Socket(given) : listen_any(port).first;
  table[0].port = static_cast<uint16_t>(ring_port);
  std::vector<Socket> peers;
  while (static_cast<int>(peers.size()) < size - 1) {
    const int waiting = size - 1 - static_cast<int>(peers.size());
    Socket s =
        accept_until(listener, deadline,
                     std::to_string(waiting) + " more ranks at port " + std::to_string(port) +
                         " (did a rank fail to start? its message comes first)");
    read_deadline(s.get(), deadline);
    Hello hello;
    recv_all(s.get(), &hello, sizeof(hello));
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getpeername(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
    if (hello.run != run) {
      std::fprintf(stderr, "deepops-bench: turned away %s: a rank of another run\n",
                   ip_text(a.sin_addr.s_addr).c_str());
      continue;
    }
    if (hello.rank <= 0 || hello.rank >= size || table[static_cast<size_t>(hello.rank)].port != 0) {
      throw std::runtime_error("rendezvous: unexpected rank " + std::to_string(hello.rank));
    }
    // A rank on rank 0's node may have come over loopback: the others reach
    // it at rank 0's address (0 in the table), not at their own 127.0.0.1.
    const bool loopback = (ntohl(a.sin_addr.s_addr) >> 24) == 127;
    table[static_cast<size_t>(hello.rank)] = {loopback ? 0u : a.sin_addr.s_addr,
                                              static_cast<uint16_t>(hello.ring_port)};
    peers.push_back(std::move(s));
  }
  for (auto& s : peers) send_all(s.get(), table.data(), table.size() * sizeof(PeerAddress));
  return table;
}

}  // namespace

std::pair<Socket, int> listen_on(int port) { return listen_any(port); }

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) close(fd_);
}

Ring Ring::join(int rank, int size, const std::string& host, int port, std::chrono::seconds timeout,
                int listener_fd, uint64_t run) {
  Ring ring(rank, size);
  if (size == 1) return ring;
  const auto deadline = Clock::now() + timeout;
  auto [listener, ring_port] = listen_any(0);
  auto table = rendezvous(rank, size, host, port, ring_port, run, deadline, listener_fd);
  const auto& next = table[static_cast<size_t>((rank + 1) % size)];
  // 0: on rank 0's node, which rank 0 itself reaches over loopback.
  const std::string next_host = next.ip != 0 ? ip_text(next.ip)
                                : rank == 0  ? std::string("127.0.0.1")
                                             : host;
  ring.next_ = connect_until(next_host, next.port, deadline);
  int32_t me = rank;
  send_all(ring.next_.get(), &me, sizeof(me));
  ring.prev_ = accept_until(listener, deadline, "rank " + std::to_string((rank + size - 1) % size));
  read_deadline(ring.prev_.get(), deadline);
  int32_t who = -1;
  recv_all(ring.prev_.get(), &who, sizeof(who));
  if (who != (rank + size - 1) % size) {
    throw std::runtime_error("ring: rank " + std::to_string(who) + " connected out of turn");
  }
  timeval forever{};  // the all-reduces poll; no deadline on the socket itself
  setsockopt(ring.prev_.get(), SOL_SOCKET, SO_RCVTIMEO, &forever, sizeof(forever));
  return ring;
}

// One line that says which neighbour went and how, for the rank's only
// output: a rank that loses a peer ends at once rather than wait for it.
void Ring::lost_peer(int peer, const char* which, int error) const {
  throw std::runtime_error("rank " + std::to_string(rank_) + " lost rank " + std::to_string(peer) +
                           ", its " + which + " in the ring (" +
                           (error ? std::strerror(error) : "it closed the connection") +
                           "): did rank " + std::to_string(peer) + " die? This rank stops too");
}

void Ring::exchange(const char* send, size_t send_bytes, char* recv, size_t recv_bytes,
                    const std::function<void(size_t, size_t)>& on_received) {
  size_t sent = 0, got = 0, handed = 0;
  while (sent < send_bytes || got < recv_bytes) {
    pollfd p[2] = {{next_.get(), static_cast<short>(sent < send_bytes ? POLLOUT : 0), 0},
                   {prev_.get(), static_cast<short>(got < recv_bytes ? POLLIN : 0), 0}};
    int ready_fds = poll(p, 2, 60'000);
    if (ready_fds < 0 && errno == EINTR) continue;
    if (ready_fds < 0) fail("poll");
    if (ready_fds == 0) {
      throw std::runtime_error("rank " + std::to_string(rank_) + ": nothing moved to rank " +
                               std::to_string(next_rank()) + " or from rank " +
                               std::to_string(prev_rank()) + " for 60 s: a rank stopped or hangs");
    }
    if (p[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
      ssize_t w = ::send(next_.get(), send + sent, std::min(send_bytes - sent, kSegment),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EINTR) lost_peer(next_rank(), "next", errno);
      if (w > 0) sent += static_cast<size_t>(w);
    }
    if (p[1].revents & (POLLIN | POLLERR | POLLHUP)) {
      ssize_t r = ::recv(prev_.get(), recv + got, recv_bytes - got, MSG_DONTWAIT);
      if (r == 0) lost_peer(prev_rank(), "previous", 0);
      if (r < 0 && errno != EAGAIN && errno != EINTR) lost_peer(prev_rank(), "previous", errno);
      if (r > 0) got += static_cast<size_t>(r);
      // Hand over whole segments as they complete, the rest at the end.
      size_t ready = got == recv_bytes ? got : got / kSegment * kSegment;
      if (ready > handed && on_received) {
        on_received(handed, ready - handed);
        handed = ready;
      }
    }
  }
}

void Ring::allreduce(void* data, size_t count, DataType t, RedOp op) {
  allreduce(data, data, count, t, op);
}

// Out of place costs no extra pass over memory: the reduce-scatter reads the
// input chunk it reduces and writes the sum straight into the output.
void Ring::allreduce(const void* send, void* recv, size_t count, DataType t, RedOp op) {
  const size_t es = type_size(t);
  const auto* in_bytes = static_cast<const char*>(send);
  auto* out_bytes = static_cast<char*>(recv);
  if (size_ == 1 && send != recv) std::memcpy(recv, send, count * es);
  if (size_ > 1) {
    const auto n = static_cast<size_t>(size_);
    auto begin = [&](size_t c) { return c * count / n * es; };  // chunk c's first byte
    auto bytes = [&](size_t c) { return begin(c + 1) - begin(c); };
    const auto r = static_cast<size_t>(rank_);
    scratch_.resize((count / n + 1) * es);
    for (size_t s = 0; s + 1 < n; ++s) {  // reduce-scatter
      const size_t out = (r + n - s) % n, in = (r + 2 * n - s - 1) % n;
      // The first chunk sent is our own input; later ones, sums we made.
      const char* sending = (s == 0 ? in_bytes : out_bytes) + begin(out);
      exchange(sending, bytes(out), scratch_.data(), bytes(in), [&](size_t off, size_t len) {
        reduce(out_bytes + begin(in) + off, in_bytes + begin(in) + off, scratch_.data() + off,
               len / es, t, op);
      });
    }
    for (size_t s = 0; s + 1 < n; ++s) {  // all-gather
      const size_t out = (r + 1 + n - s) % n, in = (r + n - s) % n;
      exchange(out_bytes + begin(out), bytes(out), out_bytes + begin(in), bytes(in), {});
    }
  }
  if (corrupt_ && count > 0) static_cast<unsigned char*>(recv)[0] ^= 0x40;
}

void Ring::barrier() {
  int32_t token = 0;
  allreduce(&token, 1, DataType::i32, RedOp::sum);
}

// Both ride on the all-reduce: each rank contributes zeros outside its own
// slot, and an integer sum of zeros and one value is exact. Control-plane
// traffic only, where a few extra bytes do not matter.
void broadcast_bytes(Ring& ring, void* data, size_t bytes) {
  std::vector<int32_t> words((bytes + 3) / 4, 0);
  if (ring.rank() == 0) std::memcpy(words.data(), data, bytes);
  ring.allreduce(words.data(), words.size(), DataType::i32, RedOp::sum);
  std::memcpy(data, words.data(), bytes);
}

std::vector<std::string> gather_text(Ring& ring, const std::string& text, size_t limit) {
  const size_t slot = (limit + 4) / 4 * 4;  // room for the text and its end
  const auto n = static_cast<size_t>(ring.size());
  std::vector<int32_t> words(slot / 4 * n, 0);
  char* mine = reinterpret_cast<char*>(words.data()) + slot * static_cast<size_t>(ring.rank());
  std::memcpy(mine, text.data(), std::min(text.size(), limit));
  ring.allreduce(words.data(), words.size(), DataType::i32, RedOp::sum);
  std::vector<std::string> all;
  for (size_t r = 0; r < n; ++r) {
    all.emplace_back(reinterpret_cast<const char*>(words.data()) + slot * r);  // NUL-ended
  }
  return all;
}

}  // namespace deepops::bench
