#include "wire/metadata.hpp"

#include "core/bencode.hpp"

namespace shoal::wire {

namespace {
error bad(const std::string& why) {
  return error{errc::syntax, "ut_metadata: " + why, no_offset};
}
}  // namespace

std::string encode_metadata_request(std::uint32_t piece) {
  return bencode::encode(bencode::dict{{"msg_type", 0}, {"piece", static_cast<std::int64_t>(piece)}});
}

std::string encode_metadata_reject(std::uint32_t piece) {
  return bencode::encode(bencode::dict{{"msg_type", 2}, {"piece", static_cast<std::int64_t>(piece)}});
}

std::string encode_metadata_data(std::uint32_t piece, std::uint64_t total_size, std::string_view data) {
  std::string out = bencode::encode(bencode::dict{{"msg_type", 1},
                                                  {"piece", static_cast<std::int64_t>(piece)},
                                                  {"total_size", static_cast<std::int64_t>(total_size)}});
  out.append(data);
  return out;
}

result<metadata_message> decode_metadata_message(std::string_view payload) {
  bencode::limits lim;
  lim.depth = 4;
  lim.tokens = 64;
  auto doc = bencode::decode(payload, bencode::mode::lenient, lim);
  if (!doc) return bad(doc.err().message());
  auto root = doc->root();
  if (!root.is_dict()) return bad("not a dictionary");
  auto type = root.find("msg_type");
  auto piece = root.find("piece");
  if (!type.is_int() || !piece.is_int()) return bad("missing msg_type or piece");
  if (type.as_int() < 0 || type.as_int() > 2) return bad("unknown msg_type " + std::to_string(type.as_int()));
  if (piece.as_int() < 0 || piece.as_int() >= metadata_pieces(max_metadata_size)) {
    return bad("piece " + std::to_string(piece.as_int()) + " out of range");
  }
  metadata_message m;
  m.type = static_cast<metadata_msg>(type.as_int());
  m.piece = static_cast<std::uint32_t>(piece.as_int());
  const std::size_t header = payload.size() - doc->trailing_bytes();
  if (m.type == metadata_msg::data) {
    auto total = root.find("total_size");
    if (!total.is_int() || total.as_int() <= 0 || static_cast<std::uint64_t>(total.as_int()) > max_metadata_size) {
      return bad("data without a valid total_size");
    }
    m.total_size = static_cast<std::uint64_t>(total.as_int());
    m.data = payload.substr(header);
    if (m.data.size() > metadata_piece_size) return bad("data longer than 16 KiB");
    if (m.piece >= metadata_pieces(m.total_size)) return bad("piece past total_size");
  } else if (header != payload.size()) {
    return bad("bytes after a request or reject");
  }
  return m;
}

}  // namespace shoal::wire
