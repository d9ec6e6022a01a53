// Many synced folders on one session's port. The session sorts incoming connections by
// their first bytes and hands a protocol's magic to one handler only, so the sync magic is
// registered once, here: the hub reads the rest of the dialler's header up to the share id
// (secure_channel.hpp: magic 10 bytes, share id 32, X25519 key 32), and hands the stream
// and the bytes read to the engine of that folder. A share id no folder here has closes the
// connection. The header is read into a fixed 42-byte buffer within header_limit, and at
// most max_pending connections are read at once: a stranger controls no allocation and
// holds no slot for long.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "net/stream.hpp"
#include "sync/keys.hpp"

namespace shoal {
class session;
}

namespace shoal::sync {

struct hub_impl;

class hub {
 public:
  // The stream and the bytes read from it (at least the magic and the share id).
  using accept_fn = std::function<void(std::unique_ptr<net::stream>, std::string first)>;

  // `ses` outlives the hub; everything runs on ses.io()'s thread.
  explicit hub(session& ses);
  ~hub();
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  // Registers the sync magic on the session (once; again is a no-op). Errors: another
  // protocol holds the magic.
  [[nodiscard]] result<bool> start();

  // A folder's place in the hub; it leaves the hub when this goes (or on reset()).
  class registration {
   public:
    registration() = default;
    ~registration() { reset(); }
    registration(registration&& o) noexcept;
    registration& operator=(registration&& o) noexcept;
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;
    void reset();
    [[nodiscard]] explicit operator bool() const { return !owner_.expired(); }

   private:
    friend class hub;
    std::weak_ptr<hub_impl> owner_;
    share_id share_{};
  };
  // Connections naming `share` go to `fn` (network thread). Errors: the share id is taken
  // already, or max_folders are registered.
  [[nodiscard]] result<registration> add(const share_id& share, accept_fn fn);

  [[nodiscard]] std::size_t folders() const;
  // Connections whose routed bytes are being read now (at most max_pending).
  [[nodiscard]] std::size_t pending() const;
  // Connections closed for naming a share id no folder here has, or for a header that did
  // not arrive within header_limit, or past max_pending.
  [[nodiscard]] std::uint64_t refused() const;

  static constexpr std::size_t max_folders = 1024;
  static constexpr std::size_t max_pending = 256;
  static constexpr std::size_t routed_bytes = 10 + 32;  // magic + share id
  static constexpr std::chrono::milliseconds default_header_limit{10000};
  // How long a connection may take to send its first routed_bytes (tests shorten it).
  void set_header_limit(std::chrono::milliseconds d);

 private:
  std::shared_ptr<hub_impl> p_;
};

}  // namespace shoal::sync
