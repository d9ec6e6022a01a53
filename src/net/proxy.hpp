// Connections through a proxy: SOCKS5 (RFC 1928/1929) CONNECT and UDP ASSOCIATE, and HTTP
// CONNECT. The byte formats are in proxy_codec.hpp; this is the I/O around them.
#pragma once

#include <boost/asio.hpp>
#include <string>

#include "net/proxy_codec.hpp"

namespace shoal::net {

// Connects `sock` (opened here if it is not) to the proxy and asks it for a tunnel to
// target_host:target_port. A host name is passed to the proxy as a name (the proxy
// resolves it), an IP literal as an address. On success the socket is a byte stream to
// the target. The whole exchange is bounded by p.timeout (proxy_errc::timed_out). `why`,
// when given, receives one line saying what failed (the HTTP status, the SOCKS5 step).
// Every argument is taken by value or outlives the call: callers pass named objects.
[[nodiscard]] boost::asio::awaitable<boost::system::error_code> connect_through(boost::asio::ip::tcp::socket& sock,
                                                                                const proxy_settings& p,
                                                                                std::string target_host,
                                                                                std::uint16_t target_port,
                                                                                std::string* why = nullptr);

// Connects `sock` to `ep`: directly when no proxy is set, otherwise through it (the
// address goes to the proxy as an IP literal). The one call a peer connection needs.
[[nodiscard]] boost::asio::awaitable<boost::system::error_code> connect_tcp(boost::asio::ip::tcp::socket& sock,
                                                                            const proxy_settings& p,
                                                                            boost::asio::ip::tcp::endpoint ep,
                                                                            std::string* why = nullptr);

// A SOCKS5 UDP association (RFC 1928, UDP ASSOCIATE). `control` is the TCP connection
// that keeps it alive: the proxy drops the association when it closes. Datagrams go to
// `relay` wrapped with socks5_udp_wrap and come back wrapped (socks5_udp_unwrap).
struct socks5_udp_association {
  boost::asio::ip::tcp::socket control;
  boost::asio::ip::udp::endpoint relay;
  explicit socks5_udp_association(const boost::asio::any_io_executor& ex) : control(ex) {}
};

// Opens an association for datagrams we will send from `local` (its address may be
// unspecified and its port 0 when not known yet). A relay address of 0.0.0.0 or :: in
// the reply means "the proxy's own address", which is what `relay` then holds.
[[nodiscard]] boost::asio::awaitable<boost::system::error_code> socks5_udp_associate(
    socks5_udp_association& assoc, const proxy_settings& p, boost::asio::ip::udp::endpoint local,
    std::string* why = nullptr);

}  // namespace shoal::net
