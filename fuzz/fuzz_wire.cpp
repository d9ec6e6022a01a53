// Peer wire input: a byte stream framed as the read loop frames it, each message
// decoded; the 68-byte handshake; the BEP 10 extension handshake. Decoded messages must
// re-encode to the same bytes (BEP 52 hash messages included).
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "wire/extension.hpp"
#include "wire/message.hpp"
#include "wire/metadata.hpp"
#include "wire/pex.hpp"

using namespace shoal::wire;

namespace {
void reencode_check(const message& m, std::string_view body) {
  std::string out;
  switch (m.type) {
    case msg::choke:
    case msg::unchoke:
    case msg::interested:
    case msg::not_interested:
    case msg::have_all:
    case msg::have_none:
      put_simple(out, m.type);
      break;
    case msg::have:
    case msg::suggest:
    case msg::allowed_fast:
      put_index(out, m.type, m.index);
      break;
    case msg::request:
    case msg::cancel:
    case msg::reject:
      put_request(out, m.type, m.index, m.begin, m.length);
      break;
    case msg::bitfield:
      put_bitfield(out, m.payload);
      break;
    case msg::piece:
      put_piece_header(out, m.index, m.begin, m.length);
      out.append(m.payload);
      break;
    case msg::port:
      put_port(out, m.port);
      break;
    case msg::extended:
      put_extended(out, m.ext_id, m.payload);
      break;
    case msg::keep_alive:
      put_keep_alive(out);
      break;
    case msg::hash_request:
    case msg::hash_reject: {
      auto r = decode_hash_request(m.payload);
      if (!r) return;
      put_hash_request(out, m.type, *r);
      break;
    }
    case msg::hashes: {
      auto h = decode_hashes(m.payload);
      if (!h) return;
      FUZZ_CHECK(h->hashes.size() >= h->req.length);
      put_hashes(out, h->req, h->hashes);
      break;
    }
    default:
      return;
  }
  FUZZ_CHECK(out.size() >= 4);
  FUZZ_CHECK(std::string_view(out).substr(4) == body);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (size >= handshake_size) {
    auto hs = decode_handshake(in.substr(0, handshake_size));
    if (hs) FUZZ_CHECK(encode_handshake(*hs) == in.substr(0, handshake_size));
  }
  // Frame the stream exactly as peer_connection does.
  std::size_t pos = 0;
  while (true) {
    auto len = peek_length(in.substr(pos));
    if (!len || *len > max_message_size || in.size() - pos - 4 < *len) break;
    const std::string_view body = in.substr(pos + 4, *len);
    auto m = decode_message(body);
    if (m) {
      reencode_check(*m, body);
      if (m->type == msg::extended && m->ext_id != 0) {
        // ut_pex: bounded, and what decodes re-encodes to the same contacts.
        if (auto px = decode_pex(m->payload)) {
          FUZZ_CHECK(px->added.size() <= max_pex_contacts && px->dropped.size() <= 2 * max_pex_contacts);
          if (!px->added.empty() || !px->dropped.empty()) {
            auto again = decode_pex(encode_pex(*px));
            FUZZ_CHECK(again.ok() && again->added.size() == px->added.size());
          }
        }
        // ut_metadata: a data message's piece is within bounds and at most 16 KiB.
        if (auto md = decode_metadata_message(m->payload)) {
          FUZZ_CHECK(md->data.size() <= metadata_piece_size);
          if (md->type == metadata_msg::data) {
            FUZZ_CHECK(md->total_size <= max_metadata_size && md->piece < metadata_pieces(md->total_size));
            const std::string encoded = encode_metadata_data(md->piece, md->total_size, md->data);
            auto again = decode_metadata_message(encoded);
            FUZZ_CHECK(again.ok() && again->data == md->data);
          }
        }
      }
      if (m->type == msg::extended && m->ext_id == 0) {
        auto e = decode_ext_handshake(m->payload);
        if (e) {
          FUZZ_CHECK(!e->reqq || *e->reqq <= max_reqq);
          FUZZ_CHECK(e->yourip.empty() || e->yourip.size() == 4 || e->yourip.size() == 16);
          auto again = decode_ext_handshake(encode_ext_handshake(*e));
          FUZZ_CHECK(again.ok());
          FUZZ_CHECK(again->messages == e->messages && again->client == e->client && again->reqq == e->reqq);
        }
      }
    } else {
      FUZZ_CHECK(!m.err().detail.empty());
    }
    pos += 4 + *len;
  }
  return 0;
}
