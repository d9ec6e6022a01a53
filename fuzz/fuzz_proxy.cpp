// Proxy replies (net/proxy_codec.hpp): the first byte picks the parser (SOCKS5 method
// choice, RFC 1929 reply, SOCKS5 reply, SOCKS5 UDP datagram, HTTP CONNECT reply head);
// none crashes, and what parses keeps its invariants (a UDP datagram re-wraps to the same
// bytes, a reply's length agrees with socks5_reply_length).
#include <cstdint>
#include <string_view>

#include "check.hpp"
#include "net/proxy_codec.hpp"

using namespace shoal::net;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto m = parse_socks5_method(in, (data[0] & 0x80) != 0);
      if (m) FUZZ_CHECK(*m == socks5_method_none || *m == socks5_method_password);
      break;
    }
    case 1: {
      auto ec = parse_socks5_auth_reply(in);
      FUZZ_CHECK(!ec == (in.size() == 2 && in[0] == 1 && in[1] == 0));
      break;
    }
    case 2: {
      if (in.size() >= 5) {
        auto n = socks5_reply_length(in.substr(0, 5));
        if (n) FUZZ_CHECK(*n >= 3 + 1 + 1 + 2 && *n <= 3 + 1 + 1 + 255 + 2);
        auto r = parse_socks5_reply(in);
        if (r) FUZZ_CHECK(n && *n == in.size() && in[1] == 0);
      } else {
        FUZZ_CHECK(!parse_socks5_reply(in));
      }
      break;
    }
    case 3: {
      auto d = socks5_udp_unwrap(in);
      if (!d) break;
      FUZZ_CHECK(in.size() >= 3 && in[2] == 0);
      // An empty name (ATYP 3, length 0) is the one form that does not re-wrap the same.
      if (!(in[3] == 3 && in[4] == 0)) {
        auto again = socks5_udp_wrap(d->from, d->payload);
        FUZZ_CHECK(again && *again == in);
      }
      break;
    }
    default: {
      auto end = http_head_end(in);
      auto r = parse_http_connect_reply(end ? in.substr(0, *end) : in);
      if (r) FUZZ_CHECK(r->status >= 100 && r->status <= 999 && r->reason.size() <= 120);
      break;
    }
  }
  return 0;
}
