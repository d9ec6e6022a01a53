#include "wire/extension.hpp"

#include "core/bencode.hpp"

namespace shoal::wire {

std::string encode_ext_handshake(const ext_handshake& h) {
  bencode::dict d;
  bencode::dict m;
  for (const auto& [name, id] : h.messages)
    m[name] = static_cast<std::int64_t>(id);
  d["m"] = std::move(m);
  if (!h.client.empty()) d["v"] = h.client;
  if (h.reqq) d["reqq"] = static_cast<std::int64_t>(*h.reqq);
  if (h.listen_port) d["p"] = static_cast<std::int64_t>(*h.listen_port);
  if (!h.yourip.empty()) d["yourip"] = h.yourip;
  if (h.upload_only) d["upload_only"] = 1;
  if (h.metadata_size) d["metadata_size"] = static_cast<std::int64_t>(*h.metadata_size);
  return bencode::encode(d);
}

result<ext_handshake> decode_ext_handshake(std::string_view payload) {
  bencode::limits lim;
  lim.depth = 8;
  lim.tokens = 10000;
  auto doc = bencode::decode(payload, bencode::mode::lenient, lim);
  if (!doc) return error{doc.err().code, "extension handshake: " + doc.err().detail, doc.err().offset};
  bencode::node root = doc->root();
  if (!root.is_dict()) return error{errc::syntax, "extension handshake: not a dictionary", 0};
  ext_handshake h;
  for (bencode::node k : root.find("m")) {
    bencode::node v = k.value_of_key();
    if (v.is_int() && v.as_int() >= 0 && v.as_int() <= 255) {
      h.messages[std::string(k.as_string())] = static_cast<std::uint8_t>(v.as_int());
    }
  }
  if (auto v = root.find("v"); v.is_string()) h.client = std::string(v.as_string().substr(0, 64));
  if (auto q = root.find("reqq"); q.is_int() && q.as_int() > 0) {
    h.reqq = static_cast<std::uint32_t>(std::min<std::int64_t>(q.as_int(), max_reqq));
  }
  if (auto p = root.find("p"); p.is_int() && p.as_int() > 0 && p.as_int() < 65536) {
    h.listen_port = static_cast<std::uint16_t>(p.as_int());
  }
  if (auto y = root.find("yourip"); y.is_string() && (y.as_string().size() == 4 || y.as_string().size() == 16)) {
    h.yourip = std::string(y.as_string());
  }
  if (auto u = root.find("upload_only"); u.is_int() && u.as_int() != 0) h.upload_only = true;
  if (auto s = root.find("metadata_size"); s.is_int() && s.as_int() > 0) {
    h.metadata_size = static_cast<std::uint64_t>(s.as_int());
  }
  return h;
}

}  // namespace shoal::wire
