#pragma once
// An open-addressing hash map (linear probing, power-of-two capacity) for the reader's hot path:
// one multiply-shift instead of std::unordered_map's modulo and node chasing per lookup.

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace sluice {

template <class Key, class Value, class Hash, class Equal = std::equal_to<>>
class FlatMap {
 public:
  FlatMap() { slots_.resize(kInitialCapacity); }

  template <class K>
  Value* find(const K& key) {
    const std::uint64_t h = Hash{}(key);
    for (std::size_t i = index(h);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.hash == h && Equal{}(s.key, key)) return &s.value;
    }
  }

  // The value for `key`, inserted as Value{} when absent.
  template <class K>
  Value& operator[](const K& key) {
    if (Value* v = find(key)) return *v;
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    const std::uint64_t h = Hash{}(key);
    std::size_t i = index(h);
    while (slots_[i].used) i = (i + 1) & (slots_.size() - 1);
    Slot& s = slots_[i];
    s.used = true;
    s.hash = h;
    s.key = Key(key);
    s.value = Value{};
    ++size_;
    return s.value;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() {
    slots_.assign(kInitialCapacity, Slot{});
    size_ = 0;
  }

  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_) {
      if (s.used) f(s.key, s.value);
    }
  }

 private:
  static constexpr std::size_t kInitialCapacity = 64;
  struct Slot {
    bool used = false;
    std::uint64_t hash = 0;
    Key key{};
    Value value{};
  };

  std::size_t index(std::uint64_t h) const {
    return static_cast<std::size_t>((h * 0x9E3779B97F4A7C15ULL) >> 32) & (slots_.size() - 1);
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (Slot& s : old) {
      if (!s.used) continue;
      std::size_t i = index(s.hash);
      while (slots_[i].used) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = std::move(s);
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace sluice
