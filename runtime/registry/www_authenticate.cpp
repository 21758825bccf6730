#include "registry/www_authenticate.hpp"

#include <algorithm>
#include <cctype>

namespace deepops {
namespace {

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A cursor over the header value.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool done() const { return pos_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[pos_]; }
  void skip_space() {
    while (!done() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  std::string_view token() {
    skip_space();
    size_t start = pos_;
    while (!done() && is_token_char(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  // A quoted-string with backslash escapes; false if unterminated.
  bool quoted(std::string& out) {
    skip_space();
    if (peek() != '"') return false;
    for (++pos_; !done(); ++pos_) {
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c == '\\' && pos_ + 1 < s_.size()) c = s_[++pos_];
      out += c;
    }
    return false;
  }
  size_t pos() const { return pos_; }
  void seek(size_t p) { pos_ = p; }
  // Skips to the next comma, for recovery after a malformed part.
  void skip_past_comma() {
    while (!done() && s_[pos_] != ',') ++pos_;
    if (!done()) ++pos_;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// Reads "name=value" into params; on anything else restores the cursor.
bool read_param(Scanner& in, AuthChallenge& challenge) {
  size_t start = in.pos();
  std::string_view name = in.token();
  if (name.empty() || !in.eat('=')) {
    in.seek(start);
    return false;
  }
  std::string value;
  in.skip_space();
  if (in.peek() == '"') {
    if (!in.quoted(value)) return false;
  } else {
    value = std::string(in.token());
  }
  challenge.params[lower(name)] = value;
  return true;
}

}  // namespace

std::string AuthChallenge::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

std::vector<AuthChallenge> parse_www_authenticate(std::string_view header) {
  std::vector<AuthChallenge> out;
  Scanner in(header);
  while (!in.done()) {
    while (in.eat(',')) {
    }
    std::string_view scheme = in.token();
    if (scheme.empty()) {
      in.skip_past_comma();
      continue;
    }
    AuthChallenge challenge{lower(scheme), {}};
    // Params follow, comma-separated, until a bare token starts the next challenge.
    if (read_param(in, challenge)) {
      while (true) {
        size_t before_comma = in.pos();
        if (!in.eat(',')) break;
        if (!read_param(in, challenge)) {
          in.seek(before_comma);
          break;
        }
      }
    }
    out.push_back(std::move(challenge));
    in.skip_space();
    if (!in.done() && in.peek() != ',' && !is_token_char(in.peek())) in.skip_past_comma();
  }
  return out;
}

}  // namespace deepops
