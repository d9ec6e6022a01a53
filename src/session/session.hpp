// A session owns the network thread's io_context, the listen socket, the disk and hash
// pools, the global rate limits, and the torrents.
#pragma once

#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>

#include "dht/node.hpp"
#include "lsd/lsd.hpp"
#include "net/stream.hpp"
#include "net/utp.hpp"
#include "session/connection_limits.hpp"
#include "session/settings.hpp"
#include "session/torrent.hpp"
#include "storage/thread_pool.hpp"
#include "wire/message.hpp"

namespace shoal {

class session {
 public:
  session(asio::io_context& io, session_settings s);
  ~session();

  // Binds the TCP listener; with port 0 the OS picks one.
  std::error_code listen();
  [[nodiscard]] std::uint16_t port() const { return port_; }
  std::shared_ptr<torrent> add_torrent(torrent_params p);
  std::shared_ptr<torrent> find_torrent(const sha1_digest& wire_hash);
  // Stops accepting, stops torrents (flush + resume data), then calls done.
  void stop(std::function<void()> done);

  [[nodiscard]] asio::io_context& io() { return io_; }
  [[nodiscard]] const session_settings& settings() const { return settings_; }
  [[nodiscard]] const wire::peer_id& id() const { return id_; }
  [[nodiscard]] thread_pool& disk_pool() { return disk_pool_; }
  [[nodiscard]] thread_pool& hash_pool() { return hash_pool_; }
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
  // True if the endpoint is this session's own listener (trackers can hand it back).
  [[nodiscard]] bool is_self(const tcp::endpoint& ep) const;
  // An address that turned out to be us (our own peer id answered): never dialled again.
  void learned_self(const tcp::endpoint& ep) {
    if (self_endpoints_.size() < 64) self_endpoints_.insert(ep);
  }
  // Session-wide bounds on connections not yet handshaked (peer_connection keeps them).
  [[nodiscard]] connection_limits& limits() { return limits_; }

 private:
  asio::awaitable<void> accept_loop();
  // Out of descriptors: closes the oldest incoming connection not yet handshaked, or else
  // an idle handshaked one; false if there is neither.
  bool close_oldest_unauthenticated();
  // Finds peers for a torrent on the DHT and announces it there, every 15 minutes (sooner
  // while nobody is found), until the torrent or the session stops.
  asio::awaitable<void> dht_loop(std::weak_ptr<torrent> w, sha1_digest hash);

  asio::io_context& io_;
  session_settings settings_;
  wire::peer_id id_{};
  thread_pool disk_pool_;
  thread_pool hash_pool_;
  rate_limiter down_limit_, up_limit_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::map<sha1_digest, std::shared_ptr<torrent>> torrents_;
  std::map<sha1_digest, sha1_digest> aliases_;  // a hybrid's truncated v2 info-hash -> its key
  bool stopping_ = false;
  std::shared_ptr<dht::node> dht_;
  std::set<tcp::endpoint> self_endpoints_;
  std::set<tcp::endpoint> plaintext_peers_;
  std::shared_ptr<lsd::service> lsd_;
  std::shared_ptr<net::utp_socket_manager> utp_;
  connection_limits limits_;
};

}  // namespace shoal
