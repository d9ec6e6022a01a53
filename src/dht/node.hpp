// A mainline DHT node (BEP 5) on one UDP socket: answers queries (with BEP 32, 33, 42, 43,
// 44 and 51), runs iterative lookups, keeps its routing table fresh and persists it.
// Everything runs on the io_context's thread; lookups are coroutines.
#pragma once

#include <boost/asio.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "dht/krpc.hpp"
#include "dht/routing_table.hpp"
#include "dht/storage.hpp"
#include "storage/thread_pool.hpp"

namespace shoal::dht {

namespace asio = boost::asio;

// The public routers a node without saved state starts from (not used with `local`).
[[nodiscard]] const std::vector<std::string>& default_bootstrap_nodes();

struct settings {
  std::string listen_address = "0.0.0.0";
  std::uint16_t port = 6881;           // the UDP port: the same number as the TCP listener
  std::vector<std::string> bootstrap;  // HOST:PORT; empty: the public routers (unless local)
  // Keep to loopback and private addresses: no public routers, nodes elsewhere ignored.
  bool local = false;
  std::filesystem::path state_file;  // node id and routing table between runs; empty: none
  bool read_only = false;            // BEP 43: ask, never answer
  // BEP 32: also run an IPv6 node on [::] at the same port (when the IPv4 one listens on
  // 0.0.0.0 and the machine has IPv6); lookups then run on both and merge.
  bool ipv6 = false;
  storage_limits limits;
  // Per-source rate limit (loopback sources are counted by address and port).
  double queries_per_second = 20;
  double burst = 60;
  std::uint32_t strikes_to_ban = 100;  // packets dropped by the limit before a ban
  std::chrono::seconds ban_time{300};
  // A node that never answered us gets replies at most this many times its query's size.
  std::size_t reflection_factor = 4;
  std::string version = "SH\x01\x00";
  std::function<void(const std::string&)> log;
  // Where the state file is written (with its fsyncs): never on the network thread. Empty:
  // the node's own writer thread, which its destructor waits for, so the last save is on
  // disk when the node is gone. Tests set it to hold the job and run it themselves.
  std::function<void(std::function<void()>)> run_blocking;
};

struct node_stats {
  std::size_t nodes = 0, buckets = 0, torrents = 0, peers = 0, items = 0;
  std::size_t nodes6 = 0;  // the IPv6 twin's routing table
  std::uint64_t queries_in = 0, replies_out = 0, errors_out = 0, dropped_rate = 0, dropped_malformed = 0,
                banned_sources = 0, queries_out = 0, timeouts = 0, trimmed_replies = 0;
};

struct item_result {
  std::string v;  // raw bencoded value
  std::optional<std::int64_t> seq;
  std::string k, sig, salt;
};

struct put_item_params {
  std::string v;                    // raw bencoded value, at most 1000 bytes
  std::string secret_seed;          // 32 bytes: a mutable item signed with this key; empty: immutable
  std::string salt;                 // mutable only
  std::optional<std::int64_t> seq;  // mutable only; empty: one more than the newest found
};

class node : public std::enable_shared_from_this<node> {
 public:
  node(asio::io_context& io, settings s);
  ~node();

  // Binds the socket, loads saved state and starts answering and bootstrapping.
  std::error_code start();
  // Saves state and closes the socket; running lookups end.
  void stop();

  // Instead of start(): no socket of its own. Datagrams go out through `send` (e.g. the
  // uTP socket manager's send_to) and come in through deliver() (its fallback, which gets
  // the KRPC dictionaries). `port` is the shared socket's, `v6` its family. With
  // settings::ipv6 the IPv6 twin shares it too: deliver() hands it the IPv6 datagrams.
  using send_fn = std::function<void(std::span<const char>, const udp::endpoint&)>;
  std::error_code start_external(send_fn send, std::uint16_t port, bool v6 = false);
  // A datagram from the shared socket (ignored unless started with start_external).
  void deliver(std::span<const char> datagram, const udp::endpoint& from);

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const node_id& id() const { return table_.self(); }
  [[nodiscard]] node_stats stats() const;
  [[nodiscard]] const routing_table& table() const { return table_; }
  [[nodiscard]] bool running() const { return is_open(); }
  // A node heard of elsewhere (a peer's PORT message): pinged, and kept if it answers.
  void add_contact(const udp::endpoint& ep);
  // Whether it has anyone to start from: bootstrap nodes, saved nodes or a table.
  [[nodiscard]] bool has_contacts() const {
    return table_.size() > 0 || !saved_nodes_.empty() || !s_.bootstrap.empty() || !s_.local;
  }

  // Finds peers for an info-hash: on_peers gets each batch as it arrives. With announce_port,
  // the closest nodes are then told we are a peer (implied port when 0 is given... see .cpp).
  struct lookup_options {
    std::optional<std::uint16_t> announce_port;
    bool seed = false;
    bool implied_port = false;
  };
  asio::awaitable<std::size_t> get_peers(node_id info_hash, lookup_options opt,
                                         std::function<void(const std::vector<tcp::endpoint>&)> on_peers);
  // BEP 33: a get_peers lookup with "scrape" set; the bloom filters of the seeds and of the
  // downloaders that the nodes closest to info_hash return are merged (a bitwise or: an
  // address several nodes hold counts once). bloom_estimate() turns them into counts.
  struct scrape_result {
    std::string seeds = std::string(256, '\0');
    std::string peers = std::string(256, '\0');
    std::size_t answered = 0;  // nodes that returned filters
  };
  asio::awaitable<scrape_result> scrape(node_id info_hash);
  // BEP 44.
  asio::awaitable<result<item_result>> get_item(node_id target, std::string salt_for_mutable);
  asio::awaitable<result<node_id>> put_item(put_item_params p);
  // Waits until the table has some nodes (or the time passes); true if it has.
  asio::awaitable<bool> wait_ready(std::chrono::milliseconds max);
  // Takes a snapshot of the id and table on the network thread and writes it elsewhere
  // (settings::run_blocking): the write fsyncs the file and its folder.
  void save_state();

 private:
  struct pending {
    udp::endpoint to;
    std::optional<message> reply;
    std::unique_ptr<asio::steady_timer> timer;
  };
  struct source_state {
    double tokens = 0;
    clock::time_point last{};
    std::uint32_t strikes = 0;
    clock::time_point banned_until{};
  };
  struct candidate {
    node_entry n;
    enum { fresh, asked, answered, failed } st = fresh;
    std::string token;
  };

  asio::awaitable<void> receive_loop(std::shared_ptr<node> self);
  asio::awaitable<void> maintenance_loop(std::shared_ptr<node> self);
  asio::awaitable<void> bootstrap(std::shared_ptr<node> self);
  // Sends a query and waits for its answer (nullopt: timed out).
  asio::awaitable<std::optional<message>> query(std::shared_ptr<node> self, udp::endpoint to, message q,
                                                std::chrono::milliseconds timeout);
  // Iterative lookup towards target. on_reply sees every answer; returns the closest nodes
  // that answered, with their tokens.
  using reply_fn = std::function<void(const candidate&, const message&)>;
  using fill_fn = std::function<void(message&)>;
  asio::awaitable<std::vector<candidate>> lookup(std::shared_ptr<node> self, method m, node_id target,
                                                 reply_fn on_reply, fill_fn fill);
  void ping(const udp::endpoint& ep);

  // Nodes of the other family seen in replies: the twin pings them into its own table.
  void consider(const node_entry& n);
  [[nodiscard]] std::shared_ptr<node> other_family() const;
  void on_packet(std::string_view pkt, const udp::endpoint& from);
  void on_query(message& q, const udp::endpoint& from, std::size_t query_size);
  void send_error(const std::string& tid, int code, const std::string& text, const udp::endpoint& to,
                  std::size_t query_size);
  void send(const std::string& bytes, const udp::endpoint& to);
  bool allow_source(const udp::endpoint& from);
  bool allowed_address(const udp::endpoint& ep) const;
  [[nodiscard]] std::string make_token(const udp::endpoint& ep, const node_id& target, int generation) const;
  [[nodiscard]] bool valid_token(const std::string& token, const udp::endpoint& ep, const node_id& target) const;
  void vote_external_ip(const udp::endpoint& ip, const udp::endpoint& from);
  void load_state();
  std::string next_tid();
  void log(const std::string& line) const {
    if (s_.log) s_.log(line);
  }

  asio::io_context& io_;
  settings s_;
  udp::socket socket_;
  send_fn external_send_;  // set: the socket is shared and not ours
  [[nodiscard]] bool is_open() const { return external_send_ ? !stopped_ : socket_.is_open(); }
  std::uint16_t port_ = 0;
  routing_table table_;
  storage store_;
  std::unordered_map<std::string, std::shared_ptr<pending>> pending_;
  std::map<std::string, source_state> sources_;        // key: address, or address:port on loopback
  std::map<std::string, clock::time_point> answered_;  // endpoints that have answered us
  std::array<std::string, 2> secrets_;
  clock::time_point secret_rotated_{};
  std::map<std::string, std::map<std::string, bool>> ip_votes_;  // external ip -> voters
  clock::time_point votes_started_{}, last_id_change_{};
  std::vector<udp::endpoint> saved_nodes_;
  std::uint16_t tid_counter_ = 0;
  std::size_t verify_pings_ = 0;                        // pings in flight to nodes that queried us
  std::map<std::string, clock::time_point> verifying_;  // ... and to whom
  mutable node_stats stats_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::unique_ptr<asio::steady_timer> maintenance_timer_;
  bool stopped_ = false;
  bool v6_ = false;             // this socket's family
  std::shared_ptr<node> twin_;  // the IPv6 node, owned by the IPv4 one (BEP 32)
  std::weak_ptr<node> parent_;  // ... and back
  bool grace_used_ = false;     // the twin waited once for its first nodes
  // The default settings::run_blocking: one thread, so saves land in order. Declared last:
  // destroyed first, it finishes the queued saves while the rest of the node still exists.
  std::unique_ptr<thread_pool> writer_;
};

// The unit a rate limit or a vote counts: an IPv4 address, an IPv6 /64.
std::string source_prefix(const boost::asio::ip::address& a);

// "HOST:PORT" or "[v6]:PORT" -> host and port; false if malformed.
bool split_host_port(const std::string& s, std::string& host, std::string& port);

}  // namespace shoal::dht
