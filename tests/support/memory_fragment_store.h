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

  Expected<std::optional<std::string>> read(const std::string& pool,
                                            const std::string& isp) override {
    return get(pool, isp);
  }

  Status write(const std::string& pool, const std::string& isp,
               const std::optional<std::string>& content) override {
    ++attempts_;
    if (fail_at_ && *fail_at_ == attempts_) {
      return Error{path(pool, isp) + ": " + fail_message_};
    }
    if (content) {
      files_[{pool, isp}] = *content;
    } else {
      files_.erase({pool, isp});
    }
    log_.push_back({path(pool, isp), content});
    return ok_status();
  }

  std::string path(const std::string& pool, const std::string& isp) const override {
    return root_ + "/" + pool + "/" + isp + ".conf";
  }

  // Set-up and inspection.
  void put(const std::string& pool, const std::string& isp, std::string content) {
    files_[{pool, isp}] = std::move(content);
  }
  std::optional<std::string> get(const std::string& pool, const std::string& isp) const {
    auto found = files_.find({pool, isp});
    if (found == files_.end()) return std::nullopt;
    return found->second;
  }
  const std::map<std::pair<std::string, std::string>, std::string>& files() const { return files_; }
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
  std::map<std::pair<std::string, std::string>, std::string> files_;
  std::vector<std::pair<std::string, std::optional<std::string>>> log_;
  int attempts_ = 0;
  std::optional<int> fail_at_;
  std::string fail_message_;
};

}  // namespace sluice
