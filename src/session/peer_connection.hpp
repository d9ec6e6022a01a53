// One peer over any net::stream (TCP or uTP, plain or MSE-encrypted): the encryption
// handshake when policy asks for it, the BitTorrent handshake, then a read loop (a
// coroutine that parses frames as they arrive) and a write path that batches queued
// messages into one send. The code is split by job: peer_connection.cpp (lifetime, read
// and write paths, timers), peer_handshake.cpp (MSE and BitTorrent handshakes),
// peer_messages.cpp (BEP 3/6 messages, requests and serving), peer_extensions.cpp (BEP 10
// extensions: ut_metadata, ut_pex; BEP 52 hash requests).
//
// How a peer's mistakes are treated: an oddity that means something harmless (an empty
// ut_pex, a bitfield again instead of haves, have-all once complete, an unknown message)
// is taken for what it means or ignored; a protocol error (a message we cannot make sense
// of, an index out of range) closes the connection, and the torrent waits before dialling
// it again; a ban is only for corrupt data and deliberate abuse (floods).
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/bitfield.hpp"
#include "net/stream.hpp"
#include "session/connection_limits.hpp"
#include "session/metadata_copy.hpp"
#include "session/piece_picker.hpp"
#include "session/rate_limiter.hpp"
#include "wire/extension.hpp"
#include "wire/message.hpp"
#include "wire/mse.hpp"

namespace shoal {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
class torrent;
class session;

class peer_connection : public std::enable_shared_from_this<peer_connection> {
 public:
  // Incoming: the accepted stream. Outgoing: null; start_outgoing connects.
  peer_connection(session& s, std::unique_ptr<net::stream> st, bool outgoing);
  ~peer_connection();

  // Outgoing: connect, handshake, run. The torrent is already known.
  void start_outgoing(std::shared_ptr<torrent> t, tcp::endpoint ep);
  // Incoming: read the handshake, find the torrent in the session, run.
  void start_incoming();
  void close(const std::string& why);
  // Closes for a message that breaks the protocol; no ban (the torrent backs off before
  // dialling the peer again).
  void protocol_error(const std::string& why);
  // Closes and bans the peer from this torrent: corrupt data or deliberate abuse only.
  void ban(const std::string& why);
  // A full torrent may close this connection for a new one: handshaked at least `idle`
  // ago, no payload either way, neither side interested.
  [[nodiscard]] bool evictable(std::chrono::steady_clock::time_point now,
                               std::chrono::steady_clock::duration idle) const;

  [[nodiscard]] const tcp::endpoint& endpoint() const { return ep_; }
  [[nodiscard]] bool is_seed() const { return has_.all(); }
  [[nodiscard]] const bitfield& has() const { return has_; }
  [[nodiscard]] bool peer_interested() const { return peer_interested_; }
  [[nodiscard]] bool am_choking() const { return am_choking_; }
  [[nodiscard]] bool peer_choking() const { return peer_choking_; }
  [[nodiscard]] bool am_interested() const { return am_interested_; }
  [[nodiscard]] bool closed() const { return closed_; }
  [[nodiscard]] double download_rate() { return down_.rate(); }
  [[nodiscard]] double upload_rate() { return up_.rate(); }
  [[nodiscard]] std::uint64_t uploaded_total() const { return up_.total(); }
  [[nodiscard]] const std::string& client() const { return ext_.client; }
  [[nodiscard]] bool upload_only() const { return ext_.upload_only; }
  [[nodiscard]] std::chrono::steady_clock::time_point last_unchoked() const { return last_unchoked_; }
  [[nodiscard]] bool counted_as_seed() const { return counted_seed_; }
  // "tcp" or "utp" once connected; whether MSE/PE RC4 encrypts the stream.
  [[nodiscard]] const char* transport() const { return stream_ ? stream_->transport() : "none"; }
  [[nodiscard]] bool encrypted() const { return stream_ && stream_->encrypted(); }

  // Where this peer accepts connections: its address with the port it connected from
  // (outgoing) or told us (extension handshake "p"); unknown otherwise.
  [[nodiscard]] std::optional<tcp::endpoint> listen_endpoint() const;
  [[nodiscard]] bool is_outgoing() const { return outgoing_; }
  // Attached while its torrent had no metadata (a magnet being fetched): such a connection
  // only fetches the info dictionary (BEP 9); once the torrent has it, it is closed and the
  // peer dialled again as a full one.
  [[nodiscard]] bool metadata_only() const { return metadata_only_; }
  // BEP 52: the connection is in a v2 swarm (v2-only torrent, or a hybrid upgraded to or
  // reached by its v2 info-hash), so hash requests may be exchanged.
  [[nodiscard]] bool speaks_v2() const { return v2_; }
  // Queues already-framed messages.
  void send_message(std::string&& bytes) { send(std::move(bytes)); }

  void choke(bool c);
  void send_have(std::uint32_t piece);
  // Tells the peer we no longer need a block another peer delivered (end game).
  void cancel_block(const block_ref& b);
  // Our requests to this peer not yet answered, oldest first.
  [[nodiscard]] const std::deque<block_ref>& requested() const { return outstanding_; }
  void fill_requests();
  void update_interest();

 private:
  // Each coroutine takes a strong reference as a parameter: it lives in the coroutine
  // frame, so the connection outlives every suspended coroutine of its own.
  // Outgoing when connect_to is set, incoming otherwise: connect, handshake, then run.
  static asio::awaitable<void> run(std::shared_ptr<peer_connection> self, std::optional<tcp::endpoint> connect_to);
  static asio::awaitable<void> timer_loop(std::shared_ptr<peer_connection> self);
  asio::awaitable<bool> exchange_handshake(bool we_send_first);
  // MSE/PE: as initiator (outgoing) or responder (incoming, after `first` bytes were read
  // and found not to be a plaintext handshake). On success stream_ is the wrapped stream.
  asio::awaitable<bool> encryption_handshake(wire::mse::handshake h, std::string first, std::string& why);
  // Incoming: reads the first bytes and tells a plaintext handshake from MSE.
  asio::awaitable<bool> accept_encryption();
  // Outgoing: one MSE handshake as initiator with `skey`, within encryption_timeout.
  asio::awaitable<bool> mse_attempt(const sha1_digest& skey, std::uint32_t provide, std::string& why, bool& timed_out);
  // Outgoing: MSE per policy, falling back to plaintext under "preferred".
  asio::awaitable<bool> offer_encryption(const tcp::endpoint& ep);
  static asio::awaitable<void> write_loop(std::shared_ptr<peer_connection> self);
  asio::awaitable<void> read_loop();
  asio::awaitable<void> timer_body();
  void after_handshake();
  bool handle(const wire::message& m);
  void handle_extended(const wire::message& m);
  void on_hash_request(const wire::message& m);
  void on_pex(std::string_view payload);
  void on_port(std::uint16_t port);
  // A line for the session's log, tagged with the torrent once it is known.
  void log(const std::string& line) const;
  // A harmless oddity: logged (when verbose), never punished.
  void oddity(const std::string& what);
  // Bytes queued for the peer and not yet written.
  [[nodiscard]] std::uint64_t send_queued() const { return out_.size() + writing_.size(); }
  [[nodiscard]] bool send_full() const;
  // Suspends the read loop until the send queue is under its bound (or the peer closes).
  asio::awaitable<void> wait_send_room();
  // Makes room for a frame of `need` bytes from rbegin_: compacts, grows up to the
  // message limit.
  void make_read_room(std::size_t need);
  void unregister_pending();
  void release_half_open();
  void on_metadata(std::string_view payload);
  // Before the torrent has metadata: what a message means to a connection that only
  // fetches the info dictionary.
  bool handle_before_metadata(const wire::message& m);
  void start_metadata_requests();
  void on_metadata_piece(const wire::metadata_message& md);
  void maybe_send_pex();
  void on_piece(const wire::message& m);
  void on_request(const wire::message& m);
  void serve_requests();
  void on_blocks_read(const std::vector<block_ref>& run, std::uint32_t span, std::error_code ec,
                      const std::string& data);
  void send(std::string&& bytes);
  void flush_writes();
  void drop_requests();
  void remember_cancelled(const block_ref& b);
  [[nodiscard]] std::uint32_t queue_depth();
  [[nodiscard]] bool has_bitfield_state() const { return got_bitfield_; }

  session& session_;
  std::unique_ptr<net::stream> stream_;
  std::string handshake_prefix_;  // incoming: the first bytes, read to tell plaintext from MSE
  tcp::endpoint ep_;
  std::shared_ptr<torrent> torrent_;
  bool outgoing_;
  bool closed_ = false;
  std::string close_reason_;

  wire::handshake their_hs_;
  bool fast_ = false;
  bool extended_ = false;
  bool v2_ = false;
  bool dial_v2_ = false;             // outgoing over MSE: keyed and handshaked with the v2 info-hash
  std::uint32_t leaf_requests_ = 0;  // BEP 52 leaf-hash requests being read and hashed
  wire::ext_handshake ext_;
  bool got_ext_ = false;
  std::uint32_t metadata_served_ = 0;
  bool metadata_only_ = false;
  std::unique_ptr<metadata_request_state> md_;  // a magnet's fetch over this connection
  std::set<tcp::endpoint> pex_told_;            // contacts this peer has been sent (BEP 11 liveness)
  std::chrono::steady_clock::time_point last_pex_in_{};
  std::chrono::steady_clock::time_point next_pex_ = std::chrono::steady_clock::time_point::max();
  bitfield has_;
  piece_picker::interest_cursor interest_;  // where update_interest resumes its scan
  bool got_bitfield_ = false;
  bool counted_seed_ = false;
  bool attached_ = false;

  bool am_choking_ = true, am_interested_ = false;
  bool peer_choking_ = true, peer_interested_ = false;
  bool snubbed_ = false;
  std::vector<std::uint32_t> allowed_fast_;

  std::deque<block_ref> outstanding_;  // our requests to them
  std::deque<block_ref> incoming_;     // their requests to us
  std::deque<block_ref> cancelled_;    // ours, cancelled or dropped: late answers are allowed
  std::uint32_t reads_in_flight_ = 0;
  // Over an upload limit: no new reads until the debt is paid (the limit is taken when a
  // read starts, so at most one read's worth goes out ahead of the rate and a cancel can
  // still reach the requests behind it).
  bool upload_paused_ = false;
  std::uint32_t choked_requests_ = 0;    // requests received while we choke it
  std::uint64_t send_queued_bytes_ = 0;  // payload being read or queued: counted in the session's too
  void backlog_add(std::uint64_t n);
  void backlog_sub(std::uint64_t n);

  // Allocated when the read loop starts, sized to the messages (see make_read_room).
  std::vector<char> rbuf_;
  std::size_t rbegin_ = 0, rend_ = 0;
  std::chrono::steady_clock::time_point rbuf_grown_{};
  std::string out_, writing_;
  bool write_in_flight_ = false;
  // Woken (cancelled) when the send queue drains under its bound.
  asio::steady_timer send_room_;
  std::chrono::steady_clock::time_point send_full_since_{};
  std::uint32_t metadata_rejected_ = 0;
  std::chrono::steady_clock::time_point attached_at_{};
  // Incoming and not handshaked yet: our entry in the session's list.
  std::optional<std::list<connection_limits::pending>::iterator> pending_;
  bool half_open_ = false;  // counted in the session's outgoing half-open connections

  rate_meter down_, up_;
  std::chrono::steady_clock::time_point last_recv_, last_send_, last_block_, last_unchoked_;
  asio::steady_timer wake_;
  std::vector<block_ref> pick_buf_;
};

}  // namespace shoal
