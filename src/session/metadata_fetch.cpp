#include "session/metadata_fetch.hpp"

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <map>
#include <memory>
#include <set>

#include "core/bencode.hpp"
#include "net/proxy.hpp"
#include "wire/extension.hpp"
#include "wire/metadata.hpp"

namespace shoal {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::uint8_t our_ut_metadata = 1;
constexpr std::size_t max_parallel_peers = 16;
constexpr unsigned max_attempts = 4;
// Metadata pieces asked for ahead of the first one missing: the copy grows as they come.
constexpr std::uint32_t request_window = 16;
// Bytes all peers' copies may hold together: a peer's claimed size costs nothing until
// its pieces arrive, and no number of peers can make the copies outgrow this.
constexpr std::uint64_t max_buffered = wire::max_metadata_size + (4u << 20);

struct shared_state {
  std::optional<std::string> result;
  std::string last_error;
  std::size_t running = 0;
  std::uint64_t buffered = 0;                       // bytes of every peer's copy in progress
  std::set<tcp::endpoint> given_up;                 // not asked again: a wrong copy, or over the budget
  std::vector<std::weak_ptr<tcp::socket>> sockets;  // closed once a copy is verified
};

// One peer's copy of the info dictionary, kept as the 16 KiB pieces that arrived (no
// buffer at the claimed size, no copying as it grows), each charged to the shared budget
// while the copy lives. Hashed piece by piece; joined only once it has matched.
class metadata_copy {
 public:
  explicit metadata_copy(std::shared_ptr<shared_state> st) : st_(std::move(st)) {}
  ~metadata_copy() { st_->buffered -= charged_; }
  metadata_copy(const metadata_copy&) = delete;
  metadata_copy& operator=(const metadata_copy&) = delete;
  void expect(std::uint32_t pieces) { pieces_.assign(pieces, {}); }
  // Stores a piece; false if the budget of all copies cannot take it.
  bool put(std::uint32_t piece, std::string_view data) {
    auto& slot = pieces_[piece];
    if (!slot.empty()) return true;
    if (st_->buffered + data.size() > max_buffered) return false;
    slot.assign(data.data(), data.size());
    st_->buffered += data.size();
    charged_ += data.size();
    return true;
  }
  [[nodiscard]] bool matches(const metadata_fetch_params& p) const {
    if (!p.v1 && !p.v2) return false;
    hasher h1(hasher::algo::sha1), h2(hasher::algo::sha256);
    for (const auto& piece : pieces_) {
      if (p.v1) h1.update(piece);
      if (p.v2) h2.update(piece);
    }
    if (p.v1) {
      sha1_digest d;
      h1.final(d.data());
      if (d != *p.v1) return false;
    }
    if (p.v2) {
      sha256_digest d;
      h2.final(d.data());
      if (d != *p.v2) return false;
    }
    return true;
  }
  std::string join() {
    std::string out;
    out.reserve(charged_);
    for (auto& piece : pieces_) {
      out += piece;
      std::string().swap(piece);
    }
    return out;
  }

 private:
  std::shared_ptr<shared_state> st_;
  std::vector<std::string> pieces_;
  std::uint64_t charged_ = 0;
};

std::string ep_string(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// One peer: handshake, extension handshake, then every metadata piece. Returns an error
// text, or an empty string once shared state holds a verified copy.
asio::awaitable<std::string> from_peer(asio::io_context& io, std::shared_ptr<const metadata_fetch_params> pp,
                                       tcp::endpoint ep, std::shared_ptr<shared_state> st) {
  const metadata_fetch_params& p = *pp;
  auto sock_ptr = std::make_shared<tcp::socket>(io);
  st->sockets.push_back(sock_ptr);
  tcp::socket& sock = *sock_ptr;
  std::string why;
  if (auto cec = co_await net::connect_tcp(sock, p.proxy, ep, &why)) co_return "connect: " + why;
  wire::handshake hs;
  hs.set_extension_protocol();  // no fast bit: this connection sends no have-all/none
  hs.info_hash = p.wire_hash;
  hs.id = p.id;
  const std::string hs_out = wire::encode_handshake(hs);
  wire::ext_handshake eh;
  eh.messages[std::string(wire::ut_metadata)] = our_ut_metadata;
  eh.client = p.client_name;
  std::string ext_out;
  wire::put_extended(ext_out, 0, wire::encode_ext_handshake(eh));
  auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(hs_out), asio::as_tuple(asio::use_awaitable));
  if (wec) co_return "send: " + wec.message();
  std::string in(wire::handshake_size, '\0');
  auto [rec, rn] = co_await asio::async_read(sock, asio::buffer(in), asio::as_tuple(asio::use_awaitable));
  if (rec) co_return "handshake: " + rec.message();
  auto theirs = wire::decode_handshake(in);
  if (!theirs) co_return theirs.err().message();
  if (theirs->info_hash != p.wire_hash) co_return "peer answered for another torrent";
  if (!theirs->extension_protocol()) co_return "peer does not support the extension protocol";
  auto [xec, xn] = co_await asio::async_write(sock, asio::buffer(ext_out), asio::as_tuple(asio::use_awaitable));
  if (xec) co_return "send: " + xec.message();

  std::uint8_t their_id = 0;
  std::uint64_t size = 0;
  metadata_copy info(st);
  std::vector<bool> got;
  std::uint32_t have = 0;
  std::uint32_t asked = 0;  // pieces [0, asked) have been requested
  std::string buf;
  while (!st->result) {
    char head[4];
    auto [hec, hn] = co_await asio::async_read(sock, asio::buffer(head, 4), asio::as_tuple(asio::use_awaitable));
    if (hec) co_return "read: " + hec.message();
    const std::uint32_t len = *wire::peek_length(std::string_view(head, 4));
    if (len > wire::max_message_size) co_return "message too large";
    buf.resize(len);
    auto [bec, bn] = co_await asio::async_read(sock, asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (bec) co_return "read: " + bec.message();
    auto m = wire::decode_message(buf);
    if (!m) co_return m.err().message();
    if (m->type != wire::msg::extended) continue;  // bitfields, haves: not needed here
    if (m->ext_id == 0) {
      if (their_id != 0) continue;  // later handshakes carry changes only; the size is known
      auto e = wire::decode_ext_handshake(m->payload);
      if (!e) co_return e.err().message();
      auto it = e->messages.find(wire::ut_metadata);
      if (it == e->messages.end() || it->second == 0) co_return "peer does not offer ut_metadata";
      if (!e->metadata_size || *e->metadata_size == 0 || *e->metadata_size > wire::max_metadata_size) {
        co_return "peer gave no usable metadata_size";
      }
      their_id = it->second;
      size = *e->metadata_size;
      got.assign(wire::metadata_pieces(size), false);
      info.expect(static_cast<std::uint32_t>(got.size()));
      std::string reqs;
      for (; asked < got.size() && asked < request_window; ++asked)
        wire::put_extended(reqs, their_id, wire::encode_metadata_request(asked));
      auto [qec, qn] = co_await asio::async_write(sock, asio::buffer(reqs), asio::as_tuple(asio::use_awaitable));
      if (qec) co_return "send: " + qec.message();
      continue;
    }
    if (m->ext_id != our_ut_metadata || their_id == 0) continue;
    auto md = wire::decode_metadata_message(m->payload);
    if (!md) continue;  // unknown or malformed: ignored (BEP 9)
    if (md->type == wire::metadata_msg::reject) co_return "peer rejected metadata piece " + std::to_string(md->piece);
    if (md->type != wire::metadata_msg::data) continue;
    const std::uint64_t off = static_cast<std::uint64_t>(md->piece) * wire::metadata_piece_size;
    const std::uint64_t want = std::min<std::uint64_t>(wire::metadata_piece_size, size - std::min(size, off));
    if (md->total_size != size || md->piece >= asked || md->data.size() != want) {
      co_return "peer sent a metadata piece of the wrong size or one not asked for";
    }
    if (!info.put(md->piece, md->data)) {
      // The copies of all peers are at their bound. A peer claiming more than half of it
      // is not asked again (real info dictionaries are far smaller); others may be later.
      if (size > max_buffered / 2) st->given_up.insert(ep);
      co_return "metadata buffers of all peers at their bound";
    }
    if (!got[md->piece]) {
      got[md->piece] = true;
      ++have;
      if (asked < got.size()) {
        std::string req;
        wire::put_extended(req, their_id, wire::encode_metadata_request(asked++));
        auto [qec, qn] = co_await asio::async_write(sock, asio::buffer(req), asio::as_tuple(asio::use_awaitable));
        if (qec) co_return "send: " + qec.message();
      }
    }
    if (have == got.size()) {
      if (!info.matches(p)) {
        st->given_up.insert(ep);  // a whole copy of the wrong bytes: not asked again
        co_return "metadata does not match the info-hash";
      }
      if (!st->result) st->result = info.join();
      co_return "";
    }
  }
  co_return "";
}

}  // namespace

asio::awaitable<result<std::string>> fetch_metadata(asio::io_context& io, const metadata_fetch_params& p) {
  if (p.peers.empty() && !p.incoming) {
    co_return error{errc::invalid_argument, "no peers to ask for the metadata", no_offset};
  }
  auto st = std::make_shared<shared_state>();
  // The peers' coroutines may outlive this call: they share a copy of the parameters.
  auto pp = std::make_shared<const metadata_fetch_params>(p);
  const auto deadline = std::chrono::steady_clock::now() + p.timeout;
  // Each peer is tried up to max_attempts times, waiting 1 s, 2 s, ... between tries: a
  // peer that only just started may not know the torrent yet and hang up.
  struct attempt {
    tcp::endpoint ep;
    unsigned tries = 0;
    std::chrono::steady_clock::time_point not_before;
  };
  auto queue = std::make_shared<std::vector<attempt>>();
  for (const auto& ep : p.peers)
    queue->push_back({ep, 0, std::chrono::steady_clock::now()});
  asio::steady_timer tick(io);
  std::vector<tcp::endpoint> seen = p.peers;
  while (!st->result && std::chrono::steady_clock::now() < deadline) {
    const auto now = std::chrono::steady_clock::now();
    if (p.incoming) {
      for (const auto& ep : *p.incoming) {
        if (std::find(seen.begin(), seen.end(), ep) != seen.end() || seen.size() >= 1000) continue;
        seen.push_back(ep);
        queue->push_back({ep, 0, now});
      }
      p.incoming->clear();
    }
    for (std::size_t i = 0; i < queue->size() && st->running < max_parallel_peers;) {
      if ((*queue)[i].not_before > now) {
        ++i;
        continue;
      }
      attempt at = (*queue)[i];
      queue->erase(queue->begin() + static_cast<std::ptrdiff_t>(i));
      ++st->running;
      if (p.log) p.log("metadata: asking " + ep_string(at.ep));
      asio::co_spawn(
          io,
          [&io, pp, at, st, queue]() -> asio::awaitable<void> {
            asio::steady_timer limit(io);
            limit.expires_after(std::chrono::seconds(30));
            auto r = co_await (from_peer(io, pp, at.ep, st) || limit.async_wait(asio::as_tuple(asio::use_awaitable)));
            std::string why = r.index() == 0 ? std::get<0>(r) : std::string("timed out");
            if (!why.empty() && !st->result) {
              st->last_error = ep_string(at.ep) + ": " + why;
              if (pp->log) pp->log("metadata: " + st->last_error);
              if (at.tries + 1 < max_attempts && st->given_up.count(at.ep) == 0) {
                queue->push_back(
                    {at.ep, at.tries + 1, std::chrono::steady_clock::now() + std::chrono::seconds(at.tries + 1)});
              }
            }
            --st->running;
          },
          asio::detached);
    }
    if (st->running == 0 && queue->empty() && (!p.incoming || (p.finders_done && p.finders_done()))) break;
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  // Hang up on every peer still talking, so nothing outlives the fetch for long.
  for (auto& w : st->sockets) {
    if (auto s = w.lock()) {
      boost::system::error_code ec;
      s->close(ec);
    }
  }
  if (st->result) co_return std::move(*st->result);
  co_return error{
      errc::io,
      "could not get the metadata from any peer" + (st->last_error.empty() ? "" : " (last: " + st->last_error + ")"),
      no_offset};
}

std::string torrent_from_metadata(const std::string& info, const std::vector<std::string>& trackers) {
  std::string t = "d";
  if (!trackers.empty()) {
    t += "8:announce" + bencode::encode(trackers.front());
    bencode::list tiers;
    for (const auto& tr : trackers)
      tiers.emplace_back(bencode::list{tr});
    t += "13:announce-list" + bencode::encode(tiers);
  }
  t += "4:info" + info + "e";
  return t;
}

}  // namespace shoal
