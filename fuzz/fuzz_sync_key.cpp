// Fuzz target for the sync key text parser (folder_key::parse).
//
// Checks, for every input:
//  - parsing never crashes; an error is errc::syntax, says "not a shoal sync key" or that
//    the checksum does not match;
//  - a parsed key's text is the canonical 59 characters (type letter + base32 A-Z2-7) and
//    parses again to the same key (type, public key, share id), and its read-only text
//    parses to the read-only key of the same folder.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "sync/keys.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace shoal::sync;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = folder_key::parse(in);
  if (!r) {
    const shoal::error& e = r.err();
    FUZZ_CHECK(e.code == shoal::errc::syntax);
    const std::string m = e.message();
    FUZZ_CHECK(m.find(not_a_key_message) != std::string::npos || m == checksum_message);
    return 0;
  }
  const folder_key& k = *r;
  const std::string text = k.text();
  FUZZ_CHECK(text.size() == key_text_chars);
  FUZZ_CHECK(text[0] == (k.can_write() ? 'W' : 'R'));
  for (char c : text.substr(1))
    FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'));
  auto again = folder_key::parse(text);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->type() == k.type());
  FUZZ_CHECK(again->pub() == k.pub());
  FUZZ_CHECK(again->share() == k.share());
  auto ro = folder_key::parse(k.read_only_text());
  FUZZ_CHECK(ro.ok() && !ro->can_write() && ro->pub() == k.pub());
  if (k.can_write()) {
    const std::string msg(in.substr(0, 64));
    FUZZ_CHECK(ro->verify(msg, k.sign(msg)));
  }
  return 0;
}
