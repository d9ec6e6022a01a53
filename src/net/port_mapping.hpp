// Port mapping on the home router: UPnP IGD (miniupnpc) and NAT-PMP (libnatpmp), both
// tried, each on its own. Both libraries block, so one worker thread owned by the mapper
// makes every call; results come back to the io_context with asio::post. Mappings are
// refreshed at half their lease and removed on stop().
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace shoal::net {

struct port_mapping_settings {
  std::uint16_t tcp_port = 0;  // the local listen port to map (0: none)
  std::uint16_t udp_port = 0;  // DHT/uTP (0: none)
  bool upnp = true;
  bool natpmp = true;
  // The IGD's root description (e.g. http://192.168.1.1:5000/rootDesc.xml); empty: SSDP
  // discovery on the LAN.
  std::string upnp_url;
  // The NAT-PMP gateway (IPv4); empty: the default gateway.
  std::string natpmp_gateway;
  // --local: no discovery and no default gateway; only the endpoints given above.
  bool local = false;
  // Lease we ask for (UPnP) or request as lifetime (NAT-PMP); refreshed at half of what
  // is granted. UPnP routers that only take permanent leases get lease 0, re-added as often.
  std::chrono::seconds lease{3600};
  std::string description = "shoal";
  // After a failure, the next attempt waits this long (doubling up to 10 minutes).
  std::chrono::seconds retry{60};
  // One line per event, called on the io_context's thread.
  std::function<void(const std::string&)> log;
};

// What one protocol achieved.
struct mapping_protocol_status {
  bool enabled = false;  // tried at all (not off by flag or by --local)
  bool mapped = false;   // every requested port is mapped right now
  std::string external_address;
  std::uint16_t external_tcp = 0, external_udp = 0;
  std::uint32_t lease_seconds = 0;  // granted (NAT-PMP) or asked for (UPnP; 0 = permanent)
  unsigned refreshes = 0;           // successful renewals after the first mapping
  std::string last_error;           // empty after a success
};

struct port_mapping_status {
  mapping_protocol_status upnp, natpmp;
  [[nodiscard]] bool mapped() const { return upnp.mapped || natpmp.mapped; }
  // "upnp", "natpmp", "upnp+natpmp" or "none".
  [[nodiscard]] std::string protocols() const;
  // The external address from whichever protocol reported one.
  [[nodiscard]] std::string external_address() const;
};

class port_mapper {
 public:
  port_mapper(boost::asio::io_context& io, port_mapping_settings s);
  // Stops (removing the mappings, blocking) if stop() was not called.
  ~port_mapper();
  port_mapper(const port_mapper&) = delete;
  port_mapper& operator=(const port_mapper&) = delete;

  // Starts the worker: the first mapping attempt happens at once.
  void start();
  // Removes the mappings on the worker, then calls `done` on the io_context.
  void stop(std::function<void()> done);
  // The latest status (io_context thread).
  [[nodiscard]] const port_mapping_status& status() const { return shared_->status; }
  // Called on the io_context thread whenever the status changes.
  void on_change(std::function<void(const port_mapping_status&)> f) { shared_->on_change = std::move(f); }

 private:
  // What the worker's posted handlers touch: kept alive by them, not by the mapper.
  struct shared_state {
    port_mapping_status status;
    std::function<void(const port_mapping_status&)> on_change;
    std::function<void(const std::string&)> log;
  };
  struct upnp_state;
  struct natpmp_state;

  void run();
  void publish(const port_mapping_status& st, const std::string& line);
  // Each returns when the next attempt for that protocol is due.
  std::chrono::steady_clock::time_point map_upnp(port_mapping_status& st);
  std::chrono::steady_clock::time_point map_natpmp(port_mapping_status& st);
  void unmap_upnp(port_mapping_status& st);
  void unmap_natpmp(port_mapping_status& st);
  [[nodiscard]] bool stopping();

  boost::asio::io_context& io_;
  const port_mapping_settings settings_;
  std::shared_ptr<shared_state> shared_;
  std::unique_ptr<upnp_state> upnp_;
  std::unique_ptr<natpmp_state> natpmp_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::function<void()> done_;
  std::thread worker_;
};

}  // namespace shoal::net
