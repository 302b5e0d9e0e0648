#pragma once
// The FragmentStore on disk: <dir>/<pool>/<isp>.conf and <dir>/<pool>/<isp>/<vmta>.conf,
// the files PowerMTA includes.

#include <optional>
#include <string>
#include <vector>

#include "controller/ports.h"

namespace sluice::adapters {

// Pool, ISP and VMTA names become path components and end up in PowerMTA's configuration, so each
// must match [A-Za-z0-9._-]+ and be neither "." nor ".."; any other name is refused with an
// error naming it, before any file is touched. A directory or fragment on the way that is a
// symbolic link leading outside `dir` is refused too.
class FragmentFiles : public FragmentStore {
 public:
  // `dir` must be absolute; it need not exist until the first write.
  explicit FragmentFiles(std::string dir);

  // nullopt when the file does not exist; an error naming the path when it cannot be read.
  using FragmentStore::path;
  using FragmentStore::read;
  using FragmentStore::write;

  // nullopt when the file does not exist; an error naming the path when it cannot be read.
  Expected<std::optional<std::string>> read(const FragmentKey& key) override;
  // Creates the directories on the way (0755) when missing and replaces the file atomically
  // (0644); nullopt removes it (a missing file is fine) and fsyncs the directory so the removal
  // is durable.
  Status write(const FragmentKey& key, const std::optional<std::string>& content) override;
  std::string path(const FragmentKey& key) const override;

 private:
  // The directories from the root to the fragment's, outermost first.
  std::vector<std::string> directories(const FragmentKey& key) const;
  // The checked path of the fragment, or why it may not be used.
  Expected<std::string> checked_path(const FragmentKey& key) const;

  std::string dir_;
};

}  // namespace sluice::adapters
