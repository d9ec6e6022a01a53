// Session-wide bounds on connections that cost memory before they have proven anything:
// outgoing ones still connecting or handshaking, and incoming ones that have not sent a
// BitTorrent handshake for a torrent we serve. The session owns one; peer connections
// register and unregister themselves.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>

namespace shoal {

class peer_connection;

struct connection_limits {
  struct pending {
    std::weak_ptr<peer_connection> conn;
    std::chrono::steady_clock::time_point since;
  };
  // Incoming, before the handshake: oldest first, so at the bound the oldest one goes.
  std::list<pending> unauthenticated;
  std::uint32_t half_open_outgoing = 0;
  std::uint32_t peers = 0;  // handshaked and attached to a torrent, session-wide
};

}  // namespace shoal
