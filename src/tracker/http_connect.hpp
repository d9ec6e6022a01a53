// The pieces of an HTTP(S) client that trackers and web seeds share: splitting a URL and
// opening the TCP connection to its host, directly (from the bound address when one is
// set) or through the proxy, which then resolves the host's name itself.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <optional>
#include <string>

#include "tracker/client.hpp"

namespace shoal::tracker {

struct url_parts {
  std::string scheme;  // "http", "https", "udp", ...
  std::string host;    // without the brackets of an IPv6 literal
  std::string port;    // the scheme's default when the URL names none
  std::string target;  // encoded path and query; "/" at least
};

// nullopt: not an absolute URL with a host.
[[nodiscard]] std::optional<url_parts> split_url(const std::string& url);

// Connects the stream's socket to p.host:p.port. Returns nullopt on success, else why it
// failed (one line, without the URL).
[[nodiscard]] boost::asio::awaitable<std::optional<std::string>> connect_http(boost::asio::io_context& io,
                                                                              boost::beast::tcp_stream& s,
                                                                              const url_parts& p,
                                                                              const client_options& opt);

}  // namespace shoal::tracker
