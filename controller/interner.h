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

// The keys are short (domains, IPs, pool names) and hashed once per record: a multiply-mix
// over 8-byte words is several times cheaper than std::hash's byte-wise murmur for them.
inline std::uint64_t fast_hash(std::string_view s) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  std::uint64_t h = s.size() * kMul;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  if (i < s.size()) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  return h;
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
