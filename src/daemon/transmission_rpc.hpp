// Transmission's RPC (the spec of Transmission 3.00, rpc-version 16) over the daemon: the
// methods, field names, types and units a Transmission client parses blindly.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "session/torrent.hpp"

namespace shoal::daemon {

class daemon;

// Files a client sees: the real ones (BEP 47 pad files left out), as indices into the
// metainfo's list; and the verified bytes of one file (network thread).
[[nodiscard]] std::vector<std::uint32_t> visible_files(const metainfo& m);
[[nodiscard]] std::uint64_t file_bytes_done(torrent& t, std::uint32_t f);

struct daemon_config;
// Engine priorities per file: 0 skips; low 1, normal 4, high 7 (the picker orders by value).
inline constexpr std::uint8_t prio_low = 1, prio_normal = 4, prio_high = 7;
// Everything one torrent-get field needs, gathered on the network thread.
struct torrent_view {
  torrent& t;
  const torrent_status& st;
  std::int64_t now;
};
// One torrent-get field (transmission_fields.cpp); null for a name it does not know (the
// caller leaves it out, as Transmission does).
[[nodiscard]] boost::json::value torrent_field(const torrent_view& v, std::string_view name, const daemon_config& cfg);

class transmission_rpc {
 public:
  explicit transmission_rpc(daemon& d) : d_(d) {}
  // One request body in, one response body out, in the request's dialect (a JSON-RPC 2.0
  // batch too); nullopt for JSON-RPC notifications (HTTP 204). A body that is not a
  // request gets an answer naming what is wrong; an unknown method, "method name not
  // recognized" (as Transmission answers).
  [[nodiscard]] std::optional<std::string> handle(std::string_view body);
  // One request (an object) in either dialect; null for a notification.
  boost::json::value run(const boost::json::value& request);
  // The method's arguments in, its result ("success" or an error) and arguments out.
  boost::json::object call(std::string_view method, const boost::json::object& args, std::string& result);
  // Set by session-close: the daemon's owner stops when it sees this.
  bool close_requested = false;

 private:
  daemon& d_;
};

}  // namespace shoal::daemon
