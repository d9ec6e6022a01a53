#include "sync/hub.hpp"

#include <boost/asio.hpp>
#include <cstring>
#include <map>

#include "session/session.hpp"
#include "sync/secure_channel.hpp"

namespace shoal::sync {

namespace asio = boost::asio;

static_assert(hub::routed_bytes == channel_magic.size() + std::tuple_size_v<share_id>);
static_assert(hub::routed_bytes <= channel_header_bytes);

struct hub_impl : std::enable_shared_from_this<hub_impl> {
  explicit hub_impl(session& s) : ses(s) {}
  session& ses;
  bool started = false;
  std::map<share_id, hub::accept_fn> folders;
  std::size_t pending = 0;
  std::uint64_t refused = 0;
  std::chrono::milliseconds header_limit = hub::default_header_limit;

  void on_stream(std::unique_ptr<net::stream> s, std::string first);
  asio::awaitable<void> route(std::unique_ptr<net::stream> s, std::string first);
};

hub::hub(session& ses) : p_(std::make_shared<hub_impl>(ses)) {}
hub::~hub() = default;

void hub::set_header_limit(std::chrono::milliseconds d) {
  p_->header_limit = d;
}

result<bool> hub::start() {
  if (p_->started) return true;
  session::protocol p;
  p.name = "sync";
  p.magic = std::string(channel_magic);
  p.on_stream = [w = std::weak_ptr<hub_impl>(p_)](std::unique_ptr<net::stream> s, std::string first) {
    if (auto self = w.lock()) self->on_stream(std::move(s), std::move(first));
    // else: the hub is gone; dropping the stream closes it
  };
  if (auto ec = p_->ses.add_protocol(std::move(p)))
    return error{errc::invalid_argument, "sync protocol: " + ec.message()};
  p_->started = true;
  return true;
}

result<hub::registration> hub::add(const share_id& share, accept_fn fn) {
  if (p_->folders.size() >= max_folders)
    return error{errc::invalid_argument, "at most " + std::to_string(max_folders) + " folders run at once"};
  if (!p_->folders.emplace(share, std::move(fn)).second)
    return error{errc::invalid_argument, "this folder (the same share id) is running already"};
  registration r;
  r.owner_ = p_;
  r.share_ = share;
  return r;
}

std::size_t hub::folders() const {
  return p_->folders.size();
}

std::size_t hub::pending() const {
  return p_->pending;
}

std::uint64_t hub::refused() const {
  return p_->refused;
}

hub::registration::registration(registration&& o) noexcept : owner_(std::move(o.owner_)), share_(o.share_) {
  o.owner_.reset();
}

hub::registration& hub::registration::operator=(registration&& o) noexcept {
  if (this != &o) {
    reset();
    owner_ = std::move(o.owner_);
    share_ = o.share_;
    o.owner_.reset();
  }
  return *this;
}

void hub::registration::reset() {
  if (auto h = owner_.lock()) h->folders.erase(share_);
  owner_.reset();
}

void hub_impl::on_stream(std::unique_ptr<net::stream> s, std::string first) {
  if (pending >= hub::max_pending) {
    ++refused;
    return;  // dropped: closed
  }
  ++pending;
  asio::co_spawn(ses.io(), route(std::move(s), std::move(first)),
                 [self = shared_from_this()](std::exception_ptr) { --self->pending; });
}

asio::awaitable<void> hub_impl::route(std::unique_ptr<net::stream> s, std::string first) {
  auto self = shared_from_this();
  // A fixed buffer: whatever the peer sends, no more than the routed bytes are read here.
  std::array<char, hub::routed_bytes> head{};
  const std::size_t have = std::min(first.size(), head.size());
  std::memcpy(head.data(), first.data(), have);
  if (have < head.size()) {
    net::stream* raw = s.get();
    auto done = std::make_shared<bool>(false);
    asio::steady_timer watchdog(ses.io());
    watchdog.expires_after(header_limit);
    watchdog.async_wait([raw, done](boost::system::error_code ec) {
      if (!ec && !*done) raw->close();
    });
    auto [ec, n] = co_await net::read_exact(*s, asio::buffer(head.data() + have, head.size() - have));
    *done = true;
    watchdog.cancel();
    if (ec) {
      ++refused;
      s->close();
      co_return;
    }
    first.append(head.data() + have, head.size() - have);
  }
  share_id share{};
  std::memcpy(share.data(), head.data() + channel_magic.size(), share.size());
  auto it = folders.find(share);
  if (std::string_view(head.data(), channel_magic.size()) != channel_magic || it == folders.end()) {
    ++refused;
    s->close();
    co_return;
  }
  auto fn = it->second;  // a copy: the folder may leave the hub while fn runs
  fn(std::move(s), std::move(first));
}

}  // namespace shoal::sync
