// The /stream/ routes over HTTP, for the daemon and `shoal stream`: a torrent's file with
// byte ranges (read while it downloads), an .srt as WebVTT, the buffered ranges as JSON,
// and an M3U playlist of a torrent's media files. Runs on the HTTP server's thread; the
// session is reached through stream/reader (blocking trips to its network thread, so the
// session must run on a thread of its own).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "daemon/http_server.hpp"
#include "session/session.hpp"

namespace shoal::stream {

struct http_options {
  std::size_t max_streams = 32;         // bodies being sent at once, all clients together
  std::size_t read_size = 1u << 20;     // bytes asked of the reader at a time
  std::size_t max_subtitle = 8u << 20;  // an .srt converted to WebVTT is read whole
};

struct body_state;

class http_service {
 public:
  explicit http_service(session& s, http_options o = {});
  // Drops the readers of bodies still being sent (their waiting reads end): call it, or
  // destroy the service, while the session still exists.
  ~http_service();
  http_service(const http_service&) = delete;
  http_service& operator=(const http_service&) = delete;
  // Answers a request whose path starts with /stream/ (the caller did any authentication);
  // tls: the request came over HTTPS (the playlist's URLs say so).
  [[nodiscard]] daemon::reply handle(const daemon::request& req, bool tls = false);
  // Bodies being sent now.
  [[nodiscard]] std::size_t active() const { return active_->load(); }

 private:
  session& s_;
  http_options opt_;
  std::shared_ptr<std::atomic<std::size_t>> active_ = std::make_shared<std::atomic<std::size_t>>(0);
  std::vector<std::weak_ptr<body_state>> bodies_;  // the HTTP thread's
  void keep(const std::shared_ptr<body_state>& b);
};

}  // namespace shoal::stream
