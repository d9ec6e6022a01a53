// KRPC datagrams (BEP 5, 32, 33, 42, 43, 44, 51): decoding never crashes, bounds hold, a
// decoded message re-encodes to a stable canonical form, and feeding its nodes and
// values to the routing table and the storage keeps them within their limits.
#include <cstdint>
#include <string_view>

#include "check.hpp"
#include "dht/krpc.hpp"
#include "dht/routing_table.hpp"
#include "dht/storage.hpp"

using namespace shoal;
using namespace shoal::dht;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = decode(in);
  if (!m) {
    FUZZ_CHECK(!m.err().detail.empty());
    return 0;
  }
  FUZZ_CHECK(m->tid.size() <= max_transaction_id);
  FUZZ_CHECK(m->nodes.size() <= max_nodes_in_message && m->nodes6.size() <= max_nodes_in_message);
  FUZZ_CHECK(m->values.size() <= max_values_in_message);
  FUZZ_CHECK(m->type != msg_type::query || m->id);
  const std::string once = encode(*m);
  auto again = decode(once);
  FUZZ_CHECK(again);
  FUZZ_CHECK(encode(*again) == once);
  FUZZ_CHECK(again->tid == m->tid && again->type == m->type && again->nodes == m->nodes && again->values == m->values &&
             again->v == m->v);

  storage_limits lim;
  lim.max_torrents = 4;
  lim.max_peers_per_torrent = 4;
  lim.max_items = 2;
  storage st(lim);
  routing_table table(m->id ? *m->id : node_id{});
  const auto now = clock::now();
  for (const auto& n : m->nodes) {
    table.heard_from(n.id, n.ep, true, node_id_valid_for(n.id, n.ep.address()), now);
    st.announce(n.id, tcp::endpoint(n.ep.address(), n.ep.port()), false, now);
  }
  for (const auto& n : m->nodes6)
    table.heard_from(n.id, n.ep, true, false, now);
  for (const auto& v : m->values)
    st.announce(m->info_hash ? *m->info_hash : node_id{}, v, true, now);
  FUZZ_CHECK(st.torrent_count() <= lim.max_torrents);
  FUZZ_CHECK(st.peer_count() <= lim.max_torrents * lim.max_peers_per_torrent);
  FUZZ_CHECK(table.size() <= table.bucket_count() * bucket_size);
  const auto closest = table.closest(m->target ? *m->target : node_id{});
  FUZZ_CHECK(closest.size() <= bucket_size);
  if (!m->bf_seeds.empty()) FUZZ_CHECK(bloom_estimate(m->bf_seeds) >= 0);
  return 0;
}
