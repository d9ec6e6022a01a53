// Loading the .torrent a command names: a file or an http(s):// URL, with a plain answer
// when the bytes are not a torrent at all. Shared by `info`, `download` and `seed`; --peer values too.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/metainfo.hpp"
#include "net/proxy_codec.hpp"

namespace shoal::cli {

struct fetch_options {
  net::proxy_settings proxy;
  std::string bind;
  bool local = false;
};

[[nodiscard]] bool is_http_url(std::string_view s);

// GET of a .torrent by URL: at most max_torrent_size bytes, certificates verified.
[[nodiscard]] result<std::string> fetch_url(const std::string& url, const fetch_options& opt);

// Why these bytes are plainly not a .torrent ("it is empty", "it looks like HTML"), or
// empty when they start as one does (a bencoded dictionary) and the parser should say more.
[[nodiscard]] std::string not_a_torrent_reason(std::string_view head);

// A --peer value, "host:port" or "[v6]:port", resolved to an endpoint (the first address);
// the error names the value. Shared by `download`, `seed`, `stream` and `fetch-metadata`.
[[nodiscard]] result<boost::asio::ip::tcp::endpoint> resolve_peer(boost::asio::ip::tcp::resolver& resolver,
                                                                  const std::string& p);

// A .torrent from a file or URL. Errors read "not a .torrent file: it looks like HTML"
// when the content is something else entirely, else the parser's precise message.
[[nodiscard]] result<metainfo> load_torrent(const std::string& target, const fetch_options& opt);

}  // namespace shoal::cli
