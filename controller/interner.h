#pragma once
// Small dense ids for strings seen over and over (pool names, source IPs).

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

#include <vector>
#include "controller/flat_map.h"

namespace sluice {

// A multiply-mix over 8-byte words: several times cheaper than std::hash's byte-wise murmur for
// the short keys (domains, IPs, pool names) hashed once per record. Longer texts (deferral
// texts) run four lanes side by side, so their multiplies overlap instead of waiting in turn.
inline std::uint64_t fast_hash(std::string_view s) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  const auto mix = [](std::uint64_t h, std::uint64_t w) {
    h = (h ^ w) * kMul;
    return h ^ (h >> 29);
  };
  const auto word = [](const char* p) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  };
  const char* p = s.data();
  std::size_t n = s.size();
  std::uint64_t h = n * kMul;
  if (n >= 32) {
    std::uint64_t lanes[4] = {h, h + 1, h + 2, h + 3};
    for (; n >= 32; p += 32, n -= 32) {
      for (int k = 0; k < 4; ++k) lanes[k] = mix(lanes[k], word(p + 8 * k));
    }
    h = mix(mix(mix(lanes[0], lanes[1]), lanes[2]), lanes[3]);
  }
  // A final mix brings every input bit to the low bits, which direct-mapped caches index by:
  // without it, keys differing only in their last byte ("203.0.113.11", "...12") shared a slot.
  const auto finish = [](std::uint64_t x) {
    x ^= x >> 32;
    x *= kMul;
    return x ^ (x >> 29);
  };
  for (; n > 8; p += 8, n -= 8) h = mix(h, word(p));
  // The last bytes with fixed-size loads: a memcpy of a variable length is a library call,
  // which cost more than the whole hash of a short key.
  if (s.size() >= 8) return finish(mix(h, word(p + n - 8)));
  std::uint64_t w = 0;
  if (n >= 4) {
    std::uint32_t head;
    std::uint32_t tail;
    std::memcpy(&head, p, 4);
    std::memcpy(&tail, p + n - 4, 4);
    w = head | static_cast<std::uint64_t>(tail) << 32;
  } else if (n > 0) {
    w = static_cast<unsigned char>(p[0]) | static_cast<unsigned char>(p[n / 2]) << 8 |
        static_cast<unsigned char>(p[n - 1]) << 16;
  }
  return finish(mix(h, w));
}

struct TransparentStringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return fast_hash(s); }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, TransparentStringHash, std::equal_to<>>;

class Interner {
 public:
  std::uint32_t intern(std::string_view s) {
    if (const std::uint32_t* id = ids_.find(s)) return *id;
    const auto id = static_cast<std::uint32_t>(names_.size());
    names_.emplace_back(s);
    ids_[s] = id;
    return id;
  }
  const std::string& name(std::uint32_t id) const { return names_[id]; }
  std::size_t size() const { return names_.size(); }

 private:
  FlatMap<std::string, std::uint32_t, TransparentStringHash> ids_;
  std::vector<std::string> names_;
};

}  // namespace sluice
