// In-process sessions on real loopback sockets: each fixture session runs its io_context
// on its own thread; tests drive it through the library's API (handles, events) exactly
// as the CLI and the daemon do, without spawning a process.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/metainfo.hpp"
#include "session/session.hpp"
#include "storage/creator.hpp"

namespace shoal::testing {

namespace fs = std::filesystem;

// A folder removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::mt19937_64 rng(std::random_device{}());
    path = fs::temp_directory_path() / ("shoal-session-test-" + std::to_string(rng()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

inline std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

inline void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Files under `root/name` (several) or `root/name` alone (one); returns the metainfo.
inline metainfo make_torrent(const fs::path& root, const std::string& name,
                             const std::vector<std::pair<std::string, std::size_t>>& files, std::uint64_t seed,
                             std::uint64_t piece_length = 32 * 1024) {
  if (files.size() == 1 && files[0].first.empty()) {
    write_file(root / name, random_bytes(files[0].second, seed));
  } else {
    for (std::size_t i = 0; i < files.size(); ++i)
      write_file(root / name / files[i].first, random_bytes(files[i].second, seed + i));
  }
  create_options opt;
  opt.version = torrent_version::v1;
  opt.piece_length = piece_length;
  opt.threads = 1;
  auto bytes = create_torrent(root / name, opt);
  EXPECT_TRUE(bytes) << (bytes ? "" : bytes.err().message());
  auto mi = parse_metainfo(*bytes);
  EXPECT_TRUE(mi) << (mi ? "" : mi.err().message());
  return *mi;
}

class fixture_session {
 public:
  explicit fixture_session(const std::function<void(session_settings&)>& tweak = {}) {
    session_settings st;
    st.listen_address = "127.0.0.1";
    st.listen_port = 0;
    st.local = true;
    st.lsd = false;
    st.dht = false;
    st.transport = peer_transport::tcp;
    st.encryption = wire::mse::policy::allowed;
    st.flush_interval = std::chrono::seconds(1);
    st.event_mask = 0xffffffffu;  // piece_finished too
    st.announce_spacing = std::chrono::milliseconds(0);
    if (tweak) tweak(st);
    ses_ = std::make_unique<session>(io_, st);
    auto ec = ses_->listen();
    EXPECT_FALSE(ec) << ec.message();
    ses_->start_thread();
  }
  ~fixture_session() { ses_->shutdown(); }
  fixture_session(const fixture_session&) = delete;
  fixture_session& operator=(const fixture_session&) = delete;

  [[nodiscard]] session& ses() { return *ses_; }
  [[nodiscard]] tcp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), ses_->port()}; }

  // Every event seen so far, in order (the queue is drained into this log).
  const std::vector<session_event>& events() {
    for (auto& e : ses_->events().pop())
      log_.push_back(std::move(e));
    return log_;
  }
  // Waits (up to `limit`) for an event of torrent `id` that `pred` accepts, after the last
  // event of that torrent an earlier wait returned (each torrent has its own place).
  std::optional<session_event> wait_event(torrent_id id, const std::function<bool(const session_event&)>& pred,
                                          std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      events();
      auto& from = cursor_[id];
      for (std::size_t i = from; i < log_.size(); ++i) {
        if (log_[i].torrent == id && pred(log_[i])) {
          from = i + 1;
          return log_[i];
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return std::nullopt;
      for (auto& e : ses_->events().pop(std::chrono::duration_cast<std::chrono::milliseconds>(
               std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(200)))))
        log_.push_back(std::move(e));
    }
  }
  std::optional<session_event> wait_kind(torrent_id id, event_kind k,
                                         std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    return wait_event(
        id, [k](const session_event& e) { return e.kind == k; }, limit);
  }
  std::optional<session_event> wait_state(torrent_id id, torrent_state s,
                                          std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    return wait_event(
        id,
        [s](const session_event& e) {
          return e.kind == event_kind::state_changed && e.state == static_cast<std::uint8_t>(s);
        },
        limit);
  }
  // Polls the status until `pred` holds (or `limit` passes); returns the last status.
  torrent_status wait_status(const torrent_handle& h, const std::function<bool(const torrent_status&)>& pred,
                             std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto s = h.status();
      if (!s) return {};
      if (pred(*s) || std::chrono::steady_clock::now() >= deadline) return *s;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  asio::io_context io_;
  std::unique_ptr<session> ses_;
  std::vector<session_event> log_;
  std::map<torrent_id, std::size_t> cursor_;
};

}  // namespace shoal::testing
