#include "net/port_mapping.hpp"

#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <natpmp.h>
#include <sys/select.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>

// libnatpmp declares strnatpmperr only when built with ENABLE_STRNATPMPERR; Debian's
// library exports it.
extern "C" const char* strnatpmperr(int r);

namespace shoal::net {

namespace {

using clock = std::chrono::steady_clock;
constexpr auto never = clock::time_point::max();
constexpr std::chrono::seconds max_retry{600};
// One NAT-PMP request gets this long (libnatpmp alone would retry for two minutes).
constexpr std::chrono::milliseconds natpmp_request_time{4000};
// UPnP error: the router takes permanent leases only.
constexpr int upnp_only_permanent_leases = 725;

std::string upnp_error(int rc) {
  const char* s = strupnperror(rc);
  return std::to_string(rc) + (s ? std::string(" ") + s : std::string());
}

std::string natpmp_error(int rc) {
  const char* s = strnatpmperr(rc);
  return s ? std::string(s) : "error " + std::to_string(rc);
}

clock::time_point refresh_after(std::uint32_t lease_seconds) {
  return clock::now() + std::chrono::seconds(std::max<std::uint32_t>(1, lease_seconds / 2));
}

}  // namespace

std::string port_mapping_status::protocols() const {
  if (upnp.mapped && natpmp.mapped) return "upnp+natpmp";
  if (upnp.mapped) return "upnp";
  if (natpmp.mapped) return "natpmp";
  return "none";
}

std::string port_mapping_status::external_address() const {
  if (natpmp.mapped && !natpmp.external_address.empty()) return natpmp.external_address;
  if (upnp.mapped && !upnp.external_address.empty()) return upnp.external_address;
  return !natpmp.external_address.empty() ? natpmp.external_address : upnp.external_address;
}

struct port_mapper::upnp_state {
  bool have_igd = false;
  UPNPUrls urls{};
  IGDdatas data{};
  char lan_address[64] = {};
  bool tcp_mapped = false, udp_mapped = false;
  std::chrono::seconds backoff{0};
  ~upnp_state() {
    if (have_igd) FreeUPNPUrls(&urls);
  }
};

struct port_mapper::natpmp_state {
  bool tcp_mapped = false, udp_mapped = false;
  std::chrono::seconds backoff{0};
};

port_mapper::port_mapper(boost::asio::io_context& io, port_mapping_settings s)
    : io_(io),
      settings_(std::move(s)),
      shared_(std::make_shared<shared_state>()),
      upnp_(std::make_unique<upnp_state>()),
      natpmp_(std::make_unique<natpmp_state>()) {
  shared_->log = settings_.log;
}

port_mapper::~port_mapper() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard lk(mutex_);
    stop_ = true;
    done_ = nullptr;  // nobody is left to tell
  }
  wake_.notify_all();
  worker_.join();
}

void port_mapper::start() {
  if (worker_.joinable()) return;
  worker_ = std::thread([this] { run(); });
}

void port_mapper::stop(std::function<void()> done) {
  if (!worker_.joinable()) {
    if (done) boost::asio::post(io_, std::move(done));
    return;
  }
  {
    std::lock_guard lk(mutex_);
    if (stop_) return;
    stop_ = true;
    done_ = std::move(done);
  }
  wake_.notify_all();
}

bool port_mapper::stopping() {
  std::lock_guard lk(mutex_);
  return stop_;
}

void port_mapper::publish(const port_mapping_status& st, const std::string& line) {
  boost::asio::post(io_, [sh = shared_, st, line] {
    sh->status = st;
    if (sh->log && !line.empty()) sh->log("port mapping: " + line);
    if (sh->on_change) sh->on_change(st);
  });
}

void port_mapper::run() {
  port_mapping_status st;
  clock::time_point next_upnp = clock::now(), next_natpmp = clock::now();
  std::unique_lock lk(mutex_);
  while (!stop_) {
    const auto now = clock::now();
    // NAT-PMP first: one datagram, answered at once by routers that speak it.
    if (now >= next_natpmp) {
      lk.unlock();
      next_natpmp = map_natpmp(st);
      lk.lock();
      continue;
    }
    if (now >= next_upnp) {
      lk.unlock();
      next_upnp = map_upnp(st);
      lk.lock();
      continue;
    }
    const auto next = std::min(next_upnp, next_natpmp);
    if (next == never) {
      wake_.wait(lk, [this] { return stop_; });
    } else {
      wake_.wait_until(lk, next, [this] { return stop_; });
    }
  }
  lk.unlock();
  unmap_natpmp(st);
  unmap_upnp(st);
  lk.lock();
  auto done = std::move(done_);
  lk.unlock();
  if (done) boost::asio::post(io_, std::move(done));
}

clock::time_point port_mapper::map_upnp(port_mapping_status& st) {
  auto& s = st.upnp;
  auto& u = *upnp_;
  if (!settings_.upnp) return never;
  if (settings_.local && settings_.upnp_url.empty()) {
    s.last_error = "off under --local (no --upnp-url given)";
    publish(st, "");
    return never;
  }
  s.enabled = true;
  auto failed = [&](const std::string& why) {
    s.mapped = false;
    s.last_error = why;
    u.backoff = u.backoff.count() == 0 ? settings_.retry : std::min(u.backoff * 2, max_retry);
    publish(st, "UPnP: " + why + "; retrying in " + std::to_string(u.backoff.count()) + " s");
    return clock::now() + u.backoff;
  };
  if (!u.have_igd) {
    if (!settings_.upnp_url.empty()) {
      if (UPNP_GetIGDFromUrl(settings_.upnp_url.c_str(), &u.urls, &u.data, u.lan_address, sizeof u.lan_address) != 1) {
        return failed("cannot read the gateway description at " + settings_.upnp_url);
      }
    } else {
      int err = 0;
      UPNPDev* devices = upnpDiscover(2000, nullptr, nullptr, 0, 0, 2, &err);
      if (!devices) return failed("no UPnP gateway answered discovery");
      const int r = UPNP_GetValidIGD(devices, &u.urls, &u.data, u.lan_address, sizeof u.lan_address);
      freeUPNPDevlist(devices);
      if (r == 0) return failed("no UPnP Internet gateway found");
      if (r == 3) {
        FreeUPNPUrls(&u.urls);
        return failed("the UPnP device found is not an Internet gateway");
      }
    }
    u.have_igd = true;
    if (u.data.first.servicetype[0] == '\0' || !u.urls.controlURL) {
      FreeUPNPUrls(&u.urls);
      u.have_igd = false;
      return failed("the gateway has no WANIPConnection or WANPPPConnection service");
    }
  }
  const char* control = u.urls.controlURL;
  const char* service = u.data.first.servicetype;
  char external[64] = {};
  if (UPNP_GetExternalIPAddress(control, service, external) == 0) s.external_address = external;
  std::uint32_t lease = static_cast<std::uint32_t>(settings_.lease.count());
  const bool was_mapped = s.mapped;
  std::string summary;
  for (const auto& [proto, port] : {std::pair{"TCP", settings_.tcp_port}, std::pair{"UDP", settings_.udp_port}}) {
    if (port == 0) continue;
    const std::string p = std::to_string(port);
    auto add = [&](std::uint32_t l) {
      const std::string ls = std::to_string(l);
      return UPNP_AddPortMapping(control, service, p.c_str(), p.c_str(), u.lan_address, settings_.description.c_str(),
                                 proto, nullptr, ls.c_str());
    };
    int rc = add(lease);
    if (rc == upnp_only_permanent_leases && lease != 0) {
      lease = 0;
      rc = add(0);
    }
    if (rc != 0) {
      // A gateway that lost its state (rebooted) may need discovering again.
      if (rc < 0) {
        FreeUPNPUrls(&u.urls);
        u.have_igd = false;
      }
      return failed(std::string("AddPortMapping ") + proto + " " + p + ": " + upnp_error(rc));
    }
    (std::string_view(proto) == "TCP" ? u.tcp_mapped : u.udp_mapped) = true;
    (std::string_view(proto) == "TCP" ? s.external_tcp : s.external_udp) = port;
    summary += std::string(summary.empty() ? "" : ", ") + proto + " " + p;
  }
  s.mapped = true;
  s.lease_seconds = lease;
  s.last_error.clear();
  u.backoff = std::chrono::seconds(0);
  if (was_mapped) ++s.refreshes;
  publish(st, std::string("UPnP ") + (was_mapped ? "renewed " : "mapped ") + summary + " on " +
                  (s.external_address.empty() ? std::string("an unknown address") : s.external_address) + " (lease " +
                  (lease ? std::to_string(lease) + " s" : std::string("permanent")) + ")");
  // A permanent mapping is re-added as often as a leased one would be: routers forget.
  return refresh_after(lease ? lease : static_cast<std::uint32_t>(settings_.lease.count()));
}

void port_mapper::unmap_upnp(port_mapping_status& st) {
  auto& u = *upnp_;
  if (!u.have_igd || (!u.tcp_mapped && !u.udp_mapped)) return;
  std::string summary;
  for (const auto& [proto, port, mapped] :
       {std::tuple{"TCP", settings_.tcp_port, u.tcp_mapped}, std::tuple{"UDP", settings_.udp_port, u.udp_mapped}}) {
    if (!mapped) continue;
    const std::string p = std::to_string(port);
    const int rc = UPNP_DeletePortMapping(u.urls.controlURL, u.data.first.servicetype, p.c_str(), proto, nullptr);
    summary += std::string(summary.empty() ? "" : ", ") + proto + " " + p +
               (rc == 0 ? std::string() : " failed (" + upnp_error(rc) + ")");
  }
  u.tcp_mapped = u.udp_mapped = false;
  st.upnp.mapped = false;
  publish(st, "UPnP removed " + summary);
}

namespace {

// One NAT-PMP exchange already sent on `n`: waits for the reply, letting libnatpmp
// resend, for at most natpmp_request_time (or until `stop` says so).
template <class Stop>
int natpmp_wait(natpmp_t& n, natpmpresp_t& resp, Stop stop) {
  const auto deadline = clock::now() + natpmp_request_time;
  int r = NATPMP_TRYAGAIN;
  while (r == NATPMP_TRYAGAIN) {
    if (stop()) return NATPMP_ERR_NOPENDINGREQ;
    if (clock::now() >= deadline) return NATPMP_ERR_NOGATEWAYSUPPORT;
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(n.s, &fds);
    timeval tv{};
    getnatpmprequesttimeout(&n, &tv);
    // Short waits: a stop request must not sit behind a two-minute retry schedule.
    if (tv.tv_sec > 0 || tv.tv_usec > 100000) {
      tv.tv_sec = 0;
      tv.tv_usec = 100000;
    }
    ::select(n.s + 1, &fds, nullptr, nullptr, &tv);
    r = readnatpmpresponseorretry(&n, &resp);
  }
  return r;
}

struct natpmp_session {
  natpmp_t n{};
  int init = -1;
  natpmp_session(bool forced, in_addr_t gw) { init = initnatpmp(&n, forced ? 1 : 0, gw); }
  ~natpmp_session() {
    if (init >= 0) closenatpmp(&n);
  }
};

}  // namespace

clock::time_point port_mapper::map_natpmp(port_mapping_status& st) {
  auto& s = st.natpmp;
  auto& m = *natpmp_;
  if (!settings_.natpmp) return never;
  if (settings_.local && settings_.natpmp_gateway.empty()) {
    s.last_error = "off under --local (no --natpmp-gateway given)";
    publish(st, "");
    return never;
  }
  s.enabled = true;
  auto failed = [&](const std::string& why) {
    s.mapped = false;
    s.last_error = why;
    m.backoff = m.backoff.count() == 0 ? settings_.retry : std::min(m.backoff * 2, max_retry);
    publish(st, "NAT-PMP: " + why + "; retrying in " + std::to_string(m.backoff.count()) + " s");
    return clock::now() + m.backoff;
  };
  in_addr gw{};
  const bool forced = !settings_.natpmp_gateway.empty();
  if (forced && ::inet_pton(AF_INET, settings_.natpmp_gateway.c_str(), &gw) != 1) {
    s.last_error = "gateway '" + settings_.natpmp_gateway + "' is not an IPv4 address";
    publish(st, "NAT-PMP: " + s.last_error);
    return never;
  }
  natpmp_session session(forced, gw.s_addr);
  if (session.init < 0) return failed("cannot start: " + natpmp_error(session.init));
  auto stop = [this] { return stopping(); };
  natpmpresp_t resp{};
  int r = sendpublicaddressrequest(&session.n);
  if (r >= 0) r = natpmp_wait(session.n, resp, stop);
  if (stopping()) return never;
  if (r < 0) return failed("public address request: " + natpmp_error(r));
  char addr[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, addr, sizeof addr);
  s.external_address = addr;
  const bool was_mapped = s.mapped;
  std::uint32_t granted = 0;
  std::string summary;
  for (const auto& [proto, port, name] : {std::tuple{NATPMP_PROTOCOL_TCP, settings_.tcp_port, "TCP"},
                                          std::tuple{NATPMP_PROTOCOL_UDP, settings_.udp_port, "UDP"}}) {
    if (port == 0) continue;
    r = sendnewportmappingrequest(&session.n, proto, port, port, static_cast<std::uint32_t>(settings_.lease.count()));
    if (r >= 0) r = natpmp_wait(session.n, resp, stop);
    if (stopping()) return never;
    if (r < 0) return failed(std::string("mapping ") + name + " " + std::to_string(port) + ": " + natpmp_error(r));
    const auto external = resp.pnu.newportmapping.mappedpublicport;
    const auto lifetime = resp.pnu.newportmapping.lifetime;
    granted = granted == 0 ? lifetime : std::min(granted, lifetime);
    (proto == NATPMP_PROTOCOL_TCP ? m.tcp_mapped : m.udp_mapped) = true;
    (proto == NATPMP_PROTOCOL_TCP ? s.external_tcp : s.external_udp) = external;
    summary += std::string(summary.empty() ? "" : ", ") + name + " " + std::to_string(port) + " -> " +
               std::to_string(external);
  }
  s.mapped = true;
  s.lease_seconds = granted;
  s.last_error.clear();
  m.backoff = std::chrono::seconds(0);
  if (was_mapped) ++s.refreshes;
  publish(st, std::string("NAT-PMP ") + (was_mapped ? "renewed " : "mapped ") + summary + " on " + s.external_address +
                  " (lifetime " + std::to_string(granted) + " s)");
  return refresh_after(granted ? granted : static_cast<std::uint32_t>(settings_.lease.count()));
}

void port_mapper::unmap_natpmp(port_mapping_status& st) {
  auto& m = *natpmp_;
  if (!m.tcp_mapped && !m.udp_mapped) return;
  in_addr gw{};
  const bool forced = !settings_.natpmp_gateway.empty();
  if (forced) ::inet_pton(AF_INET, settings_.natpmp_gateway.c_str(), &gw);
  natpmp_session session(forced, gw.s_addr);
  std::string summary;
  for (const auto& [proto, port, mapped, name] :
       {std::tuple{NATPMP_PROTOCOL_TCP, settings_.tcp_port, m.tcp_mapped, "TCP"},
        std::tuple{NATPMP_PROTOCOL_UDP, settings_.udp_port, m.udp_mapped, "UDP"}}) {
    if (!mapped) continue;
    int r = session.init;
    natpmpresp_t resp{};
    // RFC 6886 3.4: lifetime 0 and external port 0 delete the mapping.
    if (r >= 0) r = sendnewportmappingrequest(&session.n, proto, port, 0, 0);
    if (r >= 0) r = natpmp_wait(session.n, resp, [] { return false; });
    summary += std::string(summary.empty() ? "" : ", ") + name + " " + std::to_string(port) +
               (r >= 0 ? std::string() : " failed (" + natpmp_error(r) + ")");
  }
  m.tcp_mapped = m.udp_mapped = false;
  st.natpmp.mapped = false;
  publish(st, "NAT-PMP removed " + summary);
}

}  // namespace shoal::net
