#include "source.hpp"

#include <boost/asio.hpp>
#include <cctype>
#include <fstream>
#include <optional>

#include "tracker/client.hpp"

namespace shoal::cli {

namespace asio = boost::asio;

result<asio::ip::tcp::endpoint> resolve_peer(asio::ip::tcp::resolver& resolver, const std::string& p) {
  auto colon = p.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return error{errc::invalid_argument, "peer '" + p + "': expected HOST:PORT", no_offset};
  }
  std::string host = p.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, p.substr(colon + 1), ec);
  if (ec || results.empty()) {
    return error{errc::invalid_argument, "peer '" + p + "': " + (ec ? ec.message() : "no address"), no_offset};
  }
  return results.begin()->endpoint();
}

bool is_http_url(std::string_view s) {
  auto starts = [&](std::string_view p) {
    if (s.size() < p.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(s[i])) != p[i]) return false;
    }
    return true;
  };
  return starts("http://") || starts("https://");
}

result<std::string> fetch_url(const std::string& url, const fetch_options& fo) {
  asio::io_context io;
  std::optional<result<std::string>> body;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Named, not a default-argument temporary: GCC 12 mishandles temporaries around co_await.
        tracker::client_options opt;
        opt.proxy = fo.proxy;
        opt.bind_address = fo.bind;
        opt.local = fo.local;
        body = co_await tracker::http_get(io, url, max_torrent_size, opt);
      },
      asio::detached);
  io.run();
  if (!body) return error{errc::io, "fetch failed", no_offset};
  return std::move(*body);
}

namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::string not_a_torrent_reason(std::string_view head) {
  if (head.empty()) return "not a .torrent file: it is empty";
  if (head.front() == 'd') return {};
  // Skip a UTF-8 byte order mark and leading white space before looking at the first token.
  std::string_view s = head;
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  if (s.empty()) return "not a .torrent file: it holds only white space";
  if (starts_with_ci(s, "<!doctype html") || starts_with_ci(s, "<html") || starts_with_ci(s, "<head") ||
      starts_with_ci(s, "<body"))
    return "not a .torrent file: it looks like HTML (a web page, not the torrent it links to?)";
  if (starts_with_ci(s, "<?xml") || s.front() == '<') return "not a .torrent file: it looks like XML or HTML";
  if (s.front() == '{' || s.front() == '[') return "not a .torrent file: it looks like JSON";
  if (starts_with_ci(s, "magnet:")) return "not a .torrent file: it holds a magnet link (pass the link itself)";
  if (s.substr(0, 4) == "PK\x03\x04") return "not a .torrent file: it looks like a ZIP archive";
  if (s.substr(0, 2) == "\x1f\x8b") return "not a .torrent file: it looks like gzip-compressed data";
  if (s.substr(0, 5) == "%PDF-") return "not a .torrent file: it looks like a PDF document";
  bool text = true;
  for (unsigned char c : s.substr(0, 512)) {
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
      text = false;
      break;
    }
  }
  return text ? "not a .torrent file: it is text, and a .torrent starts with a bencoded dictionary ('d')"
              : "not a .torrent file: it is binary data that does not start with a bencoded dictionary ('d')";
}

result<metainfo> load_torrent(const std::string& target, const fetch_options& opt) {
  if (is_http_url(target)) {
    auto body = fetch_url(target, opt);
    if (!body) return body.err();
    auto mi = parse_metainfo(*body);
    if (!mi) {
      if (auto why = not_a_torrent_reason(std::string_view(*body).substr(0, 4096)); !why.empty())
        return error{errc::bad_metainfo, why, no_offset};
    }
    return mi;
  }
  auto mi = load_metainfo(target);
  if (!mi && mi.err().code != errc::io && mi.err().code != errc::limit_exceeded) {
    std::ifstream f(target, std::ios::binary);
    std::string head(4096, '\0');
    f.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(f.gcount()));
    if (auto why = not_a_torrent_reason(head); !why.empty()) return error{errc::bad_metainfo, why, no_offset};
  }
  return mi;
}

}  // namespace shoal::cli
