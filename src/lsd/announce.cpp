#include "lsd/lsd.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>

#include "core/text.hpp"

namespace shoal::lsd {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

error bad(std::string what) {
  return error{errc::syntax, "lsd: " + std::move(what), no_offset};
}

}  // namespace

std::string format_announce(const announce& a) {
  std::string out = "BT-SEARCH * HTTP/1.1\r\nHost: ";
  out += group_v4;
  out += ":" + std::to_string(lsd_port) + "\r\nPort: " + std::to_string(a.port) + "\r\n";
  for (const auto& h : a.info_hashes)
    out += "Infohash: " + to_hex(as_view(h)) + "\r\n";
  if (!a.cookie.empty()) out += "cookie: " + a.cookie + "\r\n";
  out += "\r\n\r\n";
  return out;
}

result<announce> parse_announce(std::string_view d) {
  if (d.size() > 8192) return bad("datagram too large");
  if (d.rfind("BT-SEARCH * HTTP/1.1\r\n", 0) != 0) return bad("not a BT-SEARCH request");
  announce a;
  bool have_port = false;
  std::size_t pos = d.find("\r\n") + 2;
  while (pos < d.size()) {
    const auto end = d.find("\r\n", pos);
    const std::string_view line = d.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? d.size() : end + 2;
    if (line.empty()) break;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string name = lower(trim(line.substr(0, colon)));
    const std::string_view value = trim(line.substr(colon + 1));
    if (name == "port") {
      if (value.empty() || value.size() > 5 || value.find_first_not_of("0123456789") != std::string_view::npos) {
        return bad("Port is not a number");
      }
      const int p = std::stoi(std::string(value));
      if (p <= 0 || p > 65535) return bad("Port out of range");
      a.port = static_cast<std::uint16_t>(p);
      have_port = true;
    } else if (name == "infohash") {
      auto b = from_hex(value);
      if (!b || b->size() != 20) return bad("Infohash is not 40 hex digits");
      if (a.info_hashes.size() < max_hashes_per_announce) {
        sha1_digest h;
        std::memcpy(h.data(), b->data(), 20);
        a.info_hashes.push_back(h);
      }
    } else if (name == "cookie") {
      a.cookie = std::string(value.substr(0, 64));
    }
  }
  if (!have_port) return bad("no Port header");
  if (a.info_hashes.empty()) return bad("no Infohash header");
  return a;
}

bool in_network_namespace() {
  // A namespace made with `ip netns add` is bind-mounted under /run/netns: ours is one of
  // those if the inode matches. Else compare with init's, when we may look at it.
  struct stat self {};
  if (::stat("/proc/self/ns/net", &self) != 0) return false;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0 && st.st_ino == self.st_ino && st.st_dev == self.st_dev) return true;
  }
  struct stat init {};
  return ::stat("/proc/1/ns/net", &init) == 0 && init.st_ino != self.st_ino;
}

}  // namespace shoal::lsd
