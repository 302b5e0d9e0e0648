#pragma once
// An OverrideSource for tests of the cycle: the overrides to hand out, or the error of a broken
// file. Texts stand for files by name: "valid:NAME" parses to what `remember` stored.

#include <map>
#include <string>

#include "controller/ports.h"

namespace sluice {

class MemoryOverrideSource : public OverrideSource {
 public:
  OverrideRead read() override {
    OverrideRead r;
    if (!error_.empty()) {
      r.error = error_;
      return r;
    }
    r.overrides = current_;
    r.text = text_;
    return r;
  }
  OverrideRead parse(const std::string& text) override {
    OverrideRead r;
    auto found = known_.find(text);
    if (found == known_.end()) {
      r.error = "unknown text " + text;
      return r;
    }
    r.overrides = found->second;
    r.text = text;
    return r;
  }

  // The file now holds these overrides; `text` names them.
  void set(Overrides overrides, std::string text = "") {
    if (text.empty()) text = "text-" + std::to_string(known_.size() + 1);
    known_[text] = overrides;
    current_ = std::move(overrides);
    text_ = std::move(text);
    error_.clear();
  }
  // The file is broken now.
  void break_file(std::string error) { error_ = std::move(error); }

 private:
  Overrides current_;
  std::string text_;
  std::string error_;
  std::map<std::string, Overrides> known_{{"", Overrides{}}};
};

}  // namespace sluice
