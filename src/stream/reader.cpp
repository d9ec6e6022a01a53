#include "stream/reader.hpp"

#include "core/text.hpp"

namespace shoal::stream {

std::optional<torrent_id> find_torrent(session& s, std::string_view hex) {
  if (hex.size() != 40 && hex.size() != 64) return std::nullopt;
  auto raw = from_hex(hex);
  if (!raw) return std::nullopt;
  sha1_digest h{};
  std::copy_n(raw->begin(), h.size(), reinterpret_cast<char*>(h.data()));
  return s.call([&s, h]() -> std::optional<torrent_id> {
    auto found = s.find_named({}, {h});
    if (found.empty()) return std::nullopt;
    return found.front()->id();
  });
}

std::optional<std::vector<file_entry>> list_files(session& s, torrent_id t) {
  return s.call([&s, t]() -> std::optional<std::vector<file_entry>> {
    auto tor = s.find(t);
    if (!tor || !tor->has_metadata()) return std::nullopt;
    std::vector<file_entry> out;
    const auto& files = tor->files().files();
    out.reserve(files.size());
    for (std::uint32_t i = 0; i < files.size(); ++i)
      out.push_back({i, tor->file_name(i), files[i].size, files[i].pad});
    return out;
  });
}

std::string url_hash(session& s, torrent_id t) {
  return s.call([&s, t]() -> std::string {
    auto tor = s.find(t);
    if (!tor) return {};
    const auto& info = tor->info();
    if (tor->has_metadata() && !info.has_v1() && info.info_hash_v2) {
      const auto& v2 = *info.info_hash_v2;
      return to_hex(std::string_view(reinterpret_cast<const char*>(v2.data()), v2.size()));
    }
    const auto& h = tor->wire_hash();
    return to_hex(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
  });
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> have_ranges(session& s, torrent_id t, std::uint32_t file) {
  return s.call([&s, t, file]() -> std::vector<std::pair<std::uint64_t, std::uint64_t>> {
    auto tor = s.find(t);
    if (!tor) return {};
    return tor->have_ranges(file);
  });
}

file_reader::file_reader(session& s, torrent_id t, std::uint64_t id, std::uint32_t file, std::uint64_t size,
                         std::string path)
    : s_(s), torrent_(t), id_(id), file_(file), size_(size), path_(std::move(path)) {}

std::shared_ptr<file_reader> file_reader::open(session& s, torrent_id t, std::uint32_t file) {
  struct opened {
    std::uint64_t id = 0, size = 0;
    std::string path;
  };
  auto o = s.call([&s, t, file]() -> opened {
    auto tor = s.find(t);
    if (!tor || !tor->has_metadata()) return {};
    const std::uint64_t id = tor->open_reader(file);
    if (id == 0) return {};
    return {id, tor->files().files()[file].size, tor->file_name(file)};
  });
  if (o.id == 0) return nullptr;
  return std::make_shared<file_reader>(s, t, o.id, file, o.size, std::move(o.path));
}

file_reader::~file_reader() {
  // Posted, never waited for: a reader may go away on any thread, the session's included.
  asio::post(s_.io(), [s = &s_, t = torrent_, id = id_] {
    if (auto tor = s->find(t)) tor->close_reader(id);
  });
}

asio::awaitable<std::pair<std::error_code, std::string>> file_reader::read(std::uint64_t offset, std::size_t max) {
  auto ex = co_await asio::this_coro::executor;
  // By value, not the reader: a reader dropped while its reads wait closes them (they end
  // with operation_canceled) instead of being kept alive by them.
  auto init = [s = &s_, t = torrent_, id = id_, offset, max, ex](auto handler) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    asio::post(s->io(), [s, t, id, offset, max, ex, h] {
      auto answer = [ex, h](std::error_code ec, std::string data) {
        asio::post(ex, [h, ec, data = std::move(data)]() mutable { (*h)(ec, std::move(data)); });
      };
      auto tor = s->find(t);
      if (!tor) {
        answer(std::make_error_code(std::errc::operation_canceled), {});
        return;
      }
      tor->stream_read(id, offset, max, answer);
    });
  };
  auto token = asio::as_tuple(asio::use_awaitable);
  auto [ec, data] =
      co_await asio::async_initiate<decltype(token), void(std::error_code, std::string)>(std::move(init), token);
  co_return std::pair{ec, std::move(data)};
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> file_reader::have_ranges() const {
  return s_.call([this]() -> std::vector<std::pair<std::uint64_t, std::uint64_t>> {
    auto tor = s_.find(torrent_);
    if (!tor) return {};
    return tor->have_ranges(file_);
  });
}

}  // namespace shoal::stream
