#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace deepops {

// Streaming sha256 (OpenSSL's EVP, which uses the CPU's SHA extensions).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // "sha256:<64 lowercase hex>". The hasher is done after this.
  std::string finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string sha256_digest(std::string_view data);

// True for "sha256:<64 lowercase hex>": the only digests we can verify, and
// the only ones safe to use as file names in the cache.
bool is_sha256_digest(std::string_view digest);

}  // namespace deepops
