#pragma once
// An in-memory FragmentStore for tests of the cycle; one chosen write can be made to fail, as a
// full disk or a read-only directory would.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "controller/ports.h"

namespace sluice {

class MemoryFragmentStore : public FragmentStore {
 public:
  explicit MemoryFragmentStore(std::string root = "/etc/pmta/sluice") : root_(std::move(root)) {}

  using FragmentStore::path;
  using FragmentStore::read;
  using FragmentStore::write;

  Expected<std::optional<std::string>> read(const FragmentKey& key) override {
    auto found = files_.find(path(key));
    if (found == files_.end()) return std::optional<std::string>();
    return std::optional<std::string>(found->second);
  }

  Status write(const FragmentKey& key, const std::optional<std::string>& content) override {
    ++attempts_;
    if (fail_at_ && *fail_at_ == attempts_) {
      return Error{path(key) + ": " + fail_message_};
    }
    if (content) {
      files_[path(key)] = *content;
    } else {
      files_.erase(path(key));
    }
    log_.push_back({path(key), content});
    return ok_status();
  }

  std::string path(const FragmentKey& key) const override {
    const std::string pool = root_ + "/" + key.pool + "/";
    return key.vmta.empty() ? pool + key.isp + ".conf" : pool + key.isp + "/" + key.vmta + ".conf";
  }

  // Set-up and inspection.
  void put(const std::string& pool, const std::string& isp, std::string content) {
    files_[path(pool, isp)] = std::move(content);
  }
  void put(const FragmentKey& key, std::string content) { files_[path(key)] = std::move(content); }
  std::optional<std::string> get(const std::string& pool, const std::string& isp) const {
    return get(FragmentKey{pool, isp, {}});
  }
  std::optional<std::string> get(const FragmentKey& key) const {
    auto found = files_.find(path(key));
    if (found == files_.end()) return std::nullopt;
    return found->second;
  }
  // By path.
  const std::map<std::string, std::string>& files() const { return files_; }
  // The successful writes, in order: (path, content or nullopt for a removal).
  const std::vector<std::pair<std::string, std::optional<std::string>>>& log() const {
    return log_;
  }
  // The n-th write from now on (1: the next one) fails; the others succeed.
  void fail_write(int n, std::string message = "No space left on device") {
    fail_at_ = attempts_ + n;
    fail_message_ = std::move(message);
  }

 private:
  std::string root_;
  std::map<std::string, std::string> files_;
  std::vector<std::pair<std::string, std::optional<std::string>>> log_;
  int attempts_ = 0;
  std::optional<int> fail_at_;
  std::string fail_message_;
};

}  // namespace sluice
