#include "wire/pex.hpp"

#include "core/bencode.hpp"

namespace shoal::wire {

namespace ip = boost::asio::ip;

namespace {

void put_contact(std::string& v4, std::string& v6, const ip::tcp::endpoint& ep) {
  std::string& out = ep.address().is_v4() ? v4 : v6;
  if (ep.address().is_v4()) {
    const auto b = ep.address().to_v4().to_bytes();
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
  } else {
    const auto b = ep.address().to_v6().to_bytes();
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
  }
  out += static_cast<char>(ep.port() >> 8);
  out += static_cast<char>(ep.port() & 0xff);
}

// Contacts with their flags (flags[i] belongs to the i-th contact in the string, kept or
// not); port-0 contacts are skipped.
void take_contacts(std::string_view s, std::string_view flags, bool v6,
                   std::vector<std::pair<ip::tcp::endpoint, std::uint8_t>>& out) {
  const std::size_t step = v6 ? 18 : 6;
  for (std::size_t i = 0, n = 0; i + step <= s.size() && out.size() < max_pex_contacts; i += step, ++n) {
    const auto port = static_cast<std::uint16_t>(static_cast<unsigned char>(s[i + step - 2]) << 8 |
                                                 static_cast<unsigned char>(s[i + step - 1]));
    if (port == 0) continue;
    const std::uint8_t f = n < flags.size() ? static_cast<std::uint8_t>(flags[n]) : 0;
    if (v6) {
      ip::address_v6::bytes_type b;
      std::copy_n(s.data() + i, 16, reinterpret_cast<char*>(b.data()));
      out.emplace_back(ip::tcp::endpoint(ip::address_v6(b), port), f);
    } else {
      ip::address_v4::bytes_type b;
      std::copy_n(s.data() + i, 4, reinterpret_cast<char*>(b.data()));
      out.emplace_back(ip::tcp::endpoint(ip::address_v4(b), port), f);
    }
  }
}

}  // namespace

std::string encode_pex(const pex_message& m) {
  std::string a4, a6, f4, f6, d4, d6;
  for (const auto& [ep, flags] : m.added) {
    put_contact(a4, a6, ep);
    (ep.address().is_v4() ? f4 : f6) += static_cast<char>(flags);
  }
  for (const auto& ep : m.dropped)
    put_contact(d4, d6, ep);
  bencode::dict d;
  d["added"] = a4;
  d["added.f"] = f4;
  if (!a6.empty()) {
    d["added6"] = a6;
    d["added6.f"] = f6;
  }
  d["dropped"] = d4;
  if (!d6.empty()) d["dropped6"] = d6;
  return bencode::encode(d);
}

result<pex_message> decode_pex(std::string_view payload) {
  bencode::limits lim;
  lim.depth = 4;
  lim.tokens = 64;
  auto doc = bencode::decode(payload, bencode::mode::lenient, lim);
  if (!doc) return error{doc.err().code, "ut_pex: " + doc.err().detail, doc.err().offset};
  auto root = doc->root();
  if (!root.is_dict()) return error{errc::syntax, "ut_pex: not a dictionary", no_offset};
  auto a4 = root.find("added"), a6 = root.find("added6"), d4 = root.find("dropped"), d6 = root.find("dropped6");
  if (!a4.is_string() && !a6.is_string() && !d4.is_string() && !d6.is_string()) {
    return error{errc::syntax, "ut_pex: no added or dropped contacts", no_offset};
  }
  pex_message m;
  take_contacts(a4.as_string(), root.find("added.f").as_string(), false, m.added);
  take_contacts(a6.as_string(), root.find("added6.f").as_string(), true, m.added);
  std::vector<std::pair<ip::tcp::endpoint, std::uint8_t>> dropped;
  take_contacts(d4.as_string(), {}, false, dropped);
  take_contacts(d6.as_string(), {}, true, dropped);
  for (const auto& d : dropped)
    m.dropped.push_back(d.first);
  return m;
}

}  // namespace shoal::wire
