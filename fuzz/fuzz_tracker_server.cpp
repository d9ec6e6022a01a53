// The tracker server's request side: HTTP announce/scrape query strings, BEP 15 datagrams
// and whitelist files, driven through one `service` so the swarms change as the input
// goes on. The input is a list of records:
//   kind (1 byte), length (2 bytes, big-endian), that many bytes
// kind % 5: 0 an HTTP target, 1 a datagram as it is, 2 a datagram whose first 8 bytes are
// replaced by a valid connection id (to get past the check), 3 the clock moves on by
// 10 * first byte seconds and peers expire, 4 a whitelist file.
// The first byte of each HTTP or UDP record picks the source address.
#include <boost/json.hpp>
#include <cstdint>
#include <string_view>

#include "check.hpp"
#include "core/bencode.hpp"
#include "tracker/server_codec.hpp"
#include "tracker/service.hpp"

using namespace shoal;
using namespace shoal::tracker;
namespace ip = boost::asio::ip;

namespace {

const ip::address sources[] = {ip::make_address("127.0.0.1"), ip::make_address("::1"),
                               ip::make_address("::ffff:10.0.0.1"), ip::make_address("10.0.0.2")};

void check_store(const swarm_store& st, const store_limits& lim) {
  FUZZ_CHECK(st.peers() == st.seeders() + st.leechers());
  FUZZ_CHECK(st.peers_v6() <= st.peers());
  FUZZ_CHECK(st.torrents() <= lim.max_torrents);
  FUZZ_CHECK(st.peers() <= lim.max_peers);
}

std::uint32_t be32(std::string_view s, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at]) << 24 |
                                    static_cast<unsigned char>(s[at + 1]) << 16 |
                                    static_cast<unsigned char>(s[at + 2]) << 8 | static_cast<unsigned char>(s[at + 3]));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  service_options opt;
  opt.interval = 60;
  opt.limits.max_torrents = 64;
  opt.limits.max_peers_per_torrent = 32;
  opt.limits.max_peers = 256;
  opt.max_numwant = 200;
  connection_secret key{};
  key[0] = 1;
  service svc(opt, key, 7);
  std::uint64_t now = 0;
  std::string out;
  while (in.size() >= 3) {
    const auto kind = static_cast<unsigned char>(in[0]) % 5;
    const std::size_t len = std::min<std::size_t>(
        in.size() - 3, static_cast<unsigned char>(in[1]) << 8 | static_cast<unsigned char>(in[2]));
    std::string rec(in.substr(3, len));
    in.remove_prefix(3 + len);
    const ip::address& from = sources[rec.empty() ? 0 : static_cast<unsigned char>(rec[0]) % 4];
    const std::uint16_t port = 6881;
    switch (kind) {
      case 0: {
        const std::string target = rec.empty() ? std::string("/") : "/" + rec.substr(1);
        auto r = svc.handle_http(target, from, now);
        FUZZ_CHECK(r.status == 200 || r.status == 404 || r.status == 414);
        if (r.status == 200 && r.content_type == "application/json") {
          boost::system::error_code ec;
          (void)boost::json::parse(r.body, ec);
          FUZZ_CHECK(!ec);
        } else if (r.status != 404) {
          FUZZ_CHECK(bencode::decode(r.body, bencode::mode::strict).ok());
          auto rep = parse_announce_reply(r.body);
          if (rep) FUZZ_CHECK(rep->peers.size() <= opt.max_numwant);
        }
        (void)parse_announce_query(split_target(target).query);
        (void)parse_scrape_query(split_target(target).query);
        break;
      }
      case 1:
      case 2: {
        if (kind == 2 && rec.size() >= 8) {
          const ip::address src = service::unmapped(from);
          const std::string addr = src.is_v4()
                                       ? std::string(reinterpret_cast<const char*>(src.to_v4().to_bytes().data()), 4)
                                       : std::string(reinterpret_cast<const char*>(src.to_v6().to_bytes().data()), 16);
          const std::uint64_t id = make_connection_id(key, addr, port, now);
          for (int i = 0; i < 8; ++i)
            rec[static_cast<std::size_t>(i)] = static_cast<char>(id >> (56 - 8 * i));
        }
        if (!svc.handle_udp(rec, from, port, now, out)) break;
        FUZZ_CHECK(rec.size() >= udp_header_size);
        FUZZ_CHECK(out.size() >= 8);
        FUZZ_CHECK(be32(out, 4) == udp_transaction_of(rec));  // the transaction id is echoed
        const std::uint32_t action = be32(out, 0);
        FUZZ_CHECK(action <= 3);
        if (action == 1) {
          const std::size_t step = service::unmapped(from).is_v4() ? 6 : 18;
          FUZZ_CHECK(out.size() >= 20 && (out.size() - 20) % step == 0);
          FUZZ_CHECK(out.size() - 20 <= max_udp_reply_peer_bytes);
        }
        // Without a valid connection id (a forged one passes with chance 2^-56), nothing
        // larger than the datagram goes back: no amplification for spoofed sources.
        if (kind == 1) FUZZ_CHECK(out.size() <= rec.size());
        break;
      }
      case 3:
        now += 10 * (rec.empty() ? 1 : static_cast<unsigned char>(rec[0]));
        svc.expire(now);
        break;
      default:
        if (auto w = parse_whitelist(rec)) FUZZ_CHECK(w->size() <= rec.size() / 40);
        break;
    }
    check_store(svc.store(), opt.limits);
  }
  return 0;
}
