// A session owns the network thread's io_context, the listen socket, the disk and hash
// pools, the global rate limits, and the torrents.
#pragma once

#include <boost/asio.hpp>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>

#include "dht/node.hpp"
#include "lsd/lsd.hpp"
#include "net/port_mapping.hpp"
#include "net/stream.hpp"
#include "net/utp.hpp"
#include "session/connection_limits.hpp"
#include "session/events.hpp"
#include "session/settings.hpp"
#include "session/torrent.hpp"
#include "storage/file_pool.hpp"
#include "storage/thread_pool.hpp"
#include "tracker/cache.hpp"
#include "wire/message.hpp"

namespace shoal {

class session;

// A torrent as seen from any thread: calls are posted to the network thread (and, for
// the ones that answer, waited for); a handle whose torrent was removed does nothing and
// its status() is empty.
class torrent_handle {
 public:
  torrent_handle() = default;
  torrent_handle(session* s, torrent_id id) : s_(s), id_(id) {}
  [[nodiscard]] torrent_id id() const { return id_; }
  [[nodiscard]] bool valid() const { return s_ != nullptr && id_ != 0; }
  [[nodiscard]] std::optional<torrent_status> status() const;
  void pause() const;
  void resume() const;
  void force_recheck() const;
  void reannounce() const;
  void set_file_priorities(std::vector<std::uint8_t> prio) const;
  void set_sequential(bool on) const;
  void set_limits(std::uint64_t down, std::uint64_t up) const;
  void set_goals(seed_goals g) const;
  void set_labels(std::vector<std::string> labels) const;
  void move_storage(std::filesystem::path to, bool move_data = true) const;
  // Renames a file or folder of the torrent (torrent::rename_path) and waits until it is
  // done on disk: {error, why}. Call it from another thread than the session's.
  [[nodiscard]] std::pair<std::error_code, std::string> rename_path(std::string from, std::string to) const;
  void set_display_name(std::string name) const;

 private:
  template <class F>
  void with(F f) const;
  session* s_ = nullptr;
  torrent_id id_ = 0;
};

class session {
 public:
  session(asio::io_context& io, session_settings s);
  ~session();

  // Binds the TCP listener (port 0: the OS picks one), uTP's UDP socket at the same number,
  // and starts the DHT, LSD and port mapping as the settings say. Warnings (a DHT that
  // cannot start, ...) go to the log; only a TCP listener that cannot bind is an error.
  std::error_code listen();
  [[nodiscard]] net::port_mapper* port_mapper() const { return mapper_.get(); }
  // Called (on the network thread) after each event is queued: a single-threaded owner
  // posts its reader here instead of polling.
  void set_event_notify(std::function<void()> f) { event_notify_ = std::move(f); }
  // Warnings a user should see (a DHT that cannot start); the log gets them too.
  std::function<void(const std::string&)> on_warning;
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // On the network thread. Adding an info-hash that is already there returns that torrent,
  // with the new trackers, web seeds and peers merged into it.
  std::shared_ptr<torrent> add_torrent(torrent_params p);
  std::shared_ptr<torrent> find_torrent(const sha1_digest& wire_hash);
  [[nodiscard]] std::shared_ptr<torrent> find(torrent_id id) const;
  // The torrents named by id or info-hash (v1, or v2 cut to 20 bytes), each once, in id
  // order; names that match nothing are skipped (network thread).
  [[nodiscard]] std::vector<std::shared_ptr<torrent>> find_named(const std::vector<torrent_id>& ids,
                                                                 const std::vector<sha1_digest>& hashes);
  // Every torrent by id, in id order (network thread): a walk with no lookups or handles.
  [[nodiscard]] const std::map<torrent_id, std::shared_ptr<torrent>>& by_id() const { return by_id_; }
  // Stops the torrent (flush + resume data) and forgets it; with delete_data its files and
  // resume data go too. `done` (optional) runs on the network thread when it is over.
  void remove_torrent(torrent_id id, bool delete_data, std::function<void()> done = {});
  // Stops accepting, stops torrents (flush + resume data), then calls done.
  void stop(std::function<void()> done);

  // --- from any thread ---
  // Runs `f` on the network thread and returns its result: at once when called there (or
  // when the session has no thread of its own, so the caller is that thread).
  template <class F>
  auto call(F f) -> std::invoke_result_t<F&> {
    using R = std::invoke_result_t<F&>;
    if (!thread_.joinable() || io_.get_executor().running_in_this_thread()) return f();
    std::packaged_task<R()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(io_, [&task] { task(); });
    return fut.get();
  }
  torrent_handle add(torrent_params p);
  // Many at once in one trip to the network thread (a daemon loading its torrents).
  std::vector<torrent_handle> add_many(std::vector<torrent_params> ps);
  void remove(torrent_id id, bool delete_data);
  [[nodiscard]] std::vector<torrent_status> status_all();
  // Only the torrents named, by id or by info-hash (v1, or v2 cut to 20 bytes), each once,
  // in id order; names that match nothing are skipped. One trip to the network thread and
  // no status of the others: a client acting on one torrent among 10,000 pays for one.
  [[nodiscard]] std::vector<torrent_status> status_of(const std::vector<torrent_id>& ids,
                                                      const std::vector<sha1_digest>& hashes = {});
  [[nodiscard]] std::vector<torrent_handle> torrents();
  // Moves a torrent in the queue (0: first); the others shift.
  void queue_move(torrent_id id, std::uint32_t position);
  // Moves several at once (Transmission's queue-move-*, qBittorrent's top/bottom/increase/
  // decreasePrio): to the top or the bottom keeping their order among themselves, or each
  // one place up or down past a torrent that is not moving. Unknown ids are skipped.
  enum class queue_step { top, bottom, up, down };
  void queue_move(const std::vector<torrent_id>& ids, queue_step step);
  [[nodiscard]] event_queue& events() { return events_; }
  // Network thread: the queue's slots at runtime (0: no limit), handed out again at once.
  void set_queue_limits(std::uint32_t downloads, std::uint32_t seeds) {
    settings_.max_active_downloads = downloads;
    settings_.max_active_seeds = seeds;
    queue_changed();
  }
  // Runs the io_context on a thread of the session's own (the daemon, tests); shutdown()
  // stops the session and joins it.
  void start_thread();
  void shutdown();

  // --- for torrents (network thread) ---
  void post_event(session_event e);
  // A torrent's state changed in a way the queue cares about (paused, resumed, completed,
  // checked): slots are handed out again, soon.
  void queue_changed();
  // After a move in queue_: each torrent's position, saved where it changed.
  void save_queue_order();
  void torrent_activated(const std::shared_ptr<torrent>& t);
  void torrent_deactivated(const torrent& t);
  // A magnet's metadata showed a hybrid: its v2 swarm's key leads to it too.
  void add_alias(const sha1_digest& alias, const sha1_digest& key) { aliases_[alias] = key; }
  // Spreads tracker announces: the time a new announce loop may begin.
  std::chrono::steady_clock::time_point next_announce_slot();

  [[nodiscard]] asio::io_context& io() { return io_; }
  [[nodiscard]] const session_settings& settings() const { return settings_; }
  [[nodiscard]] const wire::peer_id& id() const { return id_; }
  [[nodiscard]] thread_pool& disk_pool() { return disk_pool_; }
  // Open files of every torrent together (settings().max_open_files).
  [[nodiscard]] const std::shared_ptr<file_pool>& files() const { return files_; }
  [[nodiscard]] thread_pool& hash_pool() { return hash_pool_; }
  // Name lookups, the TLS context and UDP connection ids, shared by every announce.
  [[nodiscard]] const std::shared_ptr<tracker::client_cache>& tracker_cache() const { return tracker_cache_; }
  [[nodiscard]] rate_limiter& download_limit() { return down_limit_; }
  [[nodiscard]] rate_limiter& upload_limit() { return up_limit_; }
  // The DHT node torrents announce on (none: no DHT). Private torrents never use it.
  void set_dht(std::shared_ptr<dht::node> d) { dht_ = std::move(d); }
  [[nodiscard]] const std::shared_ptr<dht::node>& dht_node() const { return dht_; }
  // uTP: a socket manager already bound (at the port number the TCP listener will take)
  // and shared with the DHT; without one, listen() opens its own when the transport
  // setting asks for uTP. Incoming uTP connections become peers like accepted TCP ones.
  void set_utp(std::shared_ptr<net::utp_socket_manager> m) { utp_ = std::move(m); }
  [[nodiscard]] net::utp_socket_manager* utp() const { return utp_.get(); }
  // Opens a stream to a peer as settings().transport says: TCP (from the outgoing address,
  // or through the proxy when one is set), uTP, or both (TCP first, uTP when TCP gets
  // nowhere within utp_connect_timeout). uTP is never used with a proxy.
  asio::awaitable<std::pair<net::error_code, std::unique_ptr<net::stream>>> connect_peer(tcp::endpoint ep);
  // TCP alone (direct from the outgoing address, or through the proxy); `limit` > 0 caps
  // the time to connect.
  asio::awaitable<std::pair<net::error_code, std::unique_ptr<net::stream>>> connect_tcp(
      tcp::endpoint ep, std::chrono::milliseconds limit);
  // MSE: the info-hash of a torrent we serve whose HASH('req2', info-hash) is `req2`.
  [[nodiscard]] std::optional<sha1_digest> find_by_obfuscated_hash(const sha1_digest& req2) const;
  // Peers that failed the encryption handshake and then spoke plaintext: under
  // "preferred" they are dialled in plaintext from then on.
  void learned_plaintext(const tcp::endpoint& ep) {
    if (plaintext_peers_.size() < 4096) plaintext_peers_.insert(ep);
  }
  [[nodiscard]] bool plaintext_only(const tcp::endpoint& ep) const { return plaintext_peers_.count(ep) != 0; }
  // Peers whose TCP port accepted and then reset or closed our plaintext handshake before
  // sending one byte (a client with TCP turned off still listens on it): under transport
  // "both" they are dialled over uTP first from then on.
  void learned_tcp_refused(const tcp::endpoint& ep) {
    if (tcp_refused_peers_.size() < 4096) tcp_refused_peers_.insert(ep);
  }
  [[nodiscard]] bool tcp_refused(const tcp::endpoint& ep) const { return tcp_refused_peers_.count(ep) != 0; }
  // True if the endpoint is this session's own listener (trackers can hand it back).
  [[nodiscard]] bool is_self(const tcp::endpoint& ep) const;
  // An address that turned out to be us (our own peer id answered): never dialled again.
  void learned_self(const tcp::endpoint& ep) {
    if (self_endpoints_.size() < 64) self_endpoints_.insert(ep);
  }
  // --- a second protocol on the BitTorrent port (folder sync, issue G) ---
  // Incoming connections (TCP or uTP) whose first bytes are `magic`, and datagrams on the
  // shared UDP socket that start with it, go to the protocol's handlers instead of
  // BitTorrent. The magic is 4 to 20 bytes, does not start with 'd' (KRPC) or a byte that
  // reads as a uTP header, and is not a prefix of the BitTorrent handshake. An MSE
  // handshake starts with 96 random bytes: it is taken for a 4-byte magic once in 2^32.
  struct protocol {
    std::string name;
    std::string magic;
    // The stream and the bytes read from it so far (the magic, perhaps more): on the
    // network thread, from then on the protocol's own.
    std::function<void(std::unique_ptr<net::stream>, std::string first)> on_stream;
    std::function<void(std::span<const char>, const asio::ip::udp::endpoint&)> on_datagram;
  };
  // An error if the magic breaks a rule above or another protocol's magic overlaps it.
  std::error_code add_protocol(protocol p);
  // Sends a datagram on the shared UDP socket (for a protocol added above); false with no
  // UDP socket (uTP off).
  bool send_datagram(std::span<const char> d, const asio::ip::udp::endpoint& to);
  // For incoming connections: the protocol whose magic `first` starts with, if any.
  [[nodiscard]] const protocol* protocol_for(std::string_view first) const;
  [[nodiscard]] bool has_protocols() const { return !protocols_.empty(); }

  // Session-wide bounds on connections not yet handshaked (peer_connection keeps them).
  [[nodiscard]] connection_limits& limits() { return limits_; }
  // max_connections: no room for another dialled peer (attached ones and those connecting).
  [[nodiscard]] bool connections_full() const {
    const auto cap = settings_.max_connections;
    return cap > 0 && limits_.peers + limits_.half_open_outgoing >= cap;
  }
  // The session-wide send budget (max_send_backlog_total): piece payload read for peers
  // and not yet written. Each connection may hold its share of it: the budget over the
  // connections, between 256 KiB and 4 MiB. A peer that stops reading keeps only its own
  // share, so it cannot stall the others.
  [[nodiscard]] std::uint64_t send_share() const;
  void send_backlog_add(std::uint64_t n) {
    send_backlog_ += n;
    send_backlog_peak_ = std::max(send_backlog_peak_, send_backlog_);
  }
  void send_backlog_sub(std::uint64_t n) { send_backlog_ -= std::min(send_backlog_, n); }
  [[nodiscard]] std::uint64_t send_backlog() const { return send_backlog_; }
  [[nodiscard]] std::uint64_t send_backlog_peak() const { return send_backlog_peak_; }
  // Scrape requests sent to trackers so far (each carries up to 74 torrents).
  [[nodiscard]] std::uint64_t scrape_requests() const { return scrape_requests_; }
  // At max_connections: closes a connection idle this long (any torrent's) to make room
  // for a new one; false if none is.
  bool make_room(std::chrono::steady_clock::duration idle);

 private:
  asio::awaitable<void> accept_loop();
  // Out of descriptors: closes the oldest incoming connection not yet handshaked, or else
  // an idle handshaked one; false if there is neither.
  bool close_oldest_unauthenticated();
  // Finds peers for a torrent on the DHT and announces it there, every 15 minutes (sooner
  // while nobody is found), until the torrent stops running (its generation changes).
  asio::awaitable<void> dht_loop(std::weak_ptr<torrent> w, sha1_digest hash, std::uint64_t gen);
  void update_queue();
  void tick();
  // Every few ticks: the trackers due a scrape, torrents grouped per tracker URL, asked
  // by scrape_round in batches (one request at a time; a new round waits for the last).
  void scrape_tick();
  asio::awaitable<void> scrape_round(std::map<std::string, std::vector<std::pair<sha1_digest, torrent_id>>> due);
  void start_dht();
  void renumber_queue();

  asio::io_context& io_;
  session_settings settings_;
  wire::peer_id id_{};
  thread_pool disk_pool_;
  thread_pool hash_pool_;
  rate_limiter down_limit_, up_limit_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::map<sha1_digest, std::shared_ptr<torrent>> torrents_;
  std::map<torrent_id, std::shared_ptr<torrent>> by_id_;
  std::vector<std::shared_ptr<torrent>> queue_;  // queue order: position = index
  torrent_id next_id_ = 1;
  event_queue events_;
  asio::steady_timer tick_timer_;
  asio::steady_timer queue_timer_;
  bool queue_update_posted_ = false;
  bool tick_running_ = false;
  std::vector<std::function<void()>> stop_waiters_;
  // Torrents being removed (stopping, then deleting their files): owned here until done, so
  // their callbacks hold them weakly (a stop interrupted by shutdown leaks no cycle), and
  // stop() waits for them (a removal right before exit still deletes the files).
  std::set<std::shared_ptr<torrent>> removing_;
  std::function<void()> removals_done_;
  std::chrono::steady_clock::time_point announce_slot_{}, dht_slot_{};
  std::thread thread_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::map<sha1_digest, sha1_digest> aliases_;  // a hybrid's truncated v2 info-hash -> its key
  bool stopping_ = false;
  std::shared_ptr<dht::node> dht_;
  std::set<tcp::endpoint> self_endpoints_;
  std::optional<asio::ip::address> listen_addr_;
  std::set<tcp::endpoint> plaintext_peers_;
  std::set<tcp::endpoint> tcp_refused_peers_;
  std::shared_ptr<lsd::service> lsd_;
  std::shared_ptr<net::utp_socket_manager> utp_;
  std::unique_ptr<net::port_mapper> mapper_;
  std::function<void()> event_notify_;
  std::vector<protocol> protocols_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed
  std::set<asio::steady_timer*> loop_timers_;                   // the DHT loops' waits
  std::shared_ptr<file_pool> files_;
  std::shared_ptr<tracker::client_cache> tracker_cache_ = std::make_shared<tracker::client_cache>();
  // Datagrams that are not uTP: a protocol's, or else the DHT's.
  void route_datagram(std::span<const char> d, const asio::ip::udp::endpoint& from);
  connection_limits limits_;
  std::uint64_t send_backlog_ = 0, send_backlog_peak_ = 0;
  bool scraping_ = false;
  std::uint32_t ticks_ = 0;
  std::uint64_t scrape_requests_ = 0;
};

template <class F>
void torrent_handle::with(F f) const {
  if (!s_) return;
  s_->call([s = s_, id = id_, f = std::move(f)]() mutable {
    if (auto t = s->find(id)) f(*t);
  });
}

}  // namespace shoal
