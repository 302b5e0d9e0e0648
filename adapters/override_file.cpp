#include "adapters/override_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config/file_safety.h"

namespace sluice::adapters {

namespace {

std::string at_line(const config::OverrideFile& file, std::int64_t line) {
  return file.source + ":" + std::to_string(line) + ": ";
}

std::string listed(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// The checks that need the configuration: every name must exist where the entry puts it.
std::optional<std::string> unknown_name(const config::OverrideFile& file, std::int64_t line,
                                        const std::string& pool, const std::string& isp,
                                        const std::string& vmta, const KnownPools& known) {
  const auto found = known.find(pool);
  if (found == known.end()) {
    std::set<std::string> pools;
    for (const auto& [name, _] : known) pools.insert(name);
    return at_line(file, line) + "unknown pool '" + pool +
           "' (the configuration's pools: " + listed(pools) + ")";
  }
  if (!isp.empty() && !found->second.isps.contains(isp)) {
    return at_line(file, line) + "pool '" + pool + "' has no ISP '" + isp +
           "' (its ISPs: " + listed(found->second.isps) + ")";
  }
  if (!vmta.empty() && !found->second.vmtas.contains(vmta)) {
    return at_line(file, line) + "pool '" + pool + "' has no VMTA '" + vmta +
           "' (its VMTAs: " + listed(found->second.vmtas) + ")";
  }
  return std::nullopt;
}

struct FileStamp {
  bool exists = false;
  off_t size = 0;
  timespec mtime{};
  bool operator==(const FileStamp& o) const {
    return exists == o.exists && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

Expected<FileStamp> stamp_of(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error{path + ": " + std::strerror(errno)};
  return FileStamp{true, st.st_size, st.st_mtim};
}

}  // namespace

Expected<Overrides> checked_overrides(const config::OverrideFile& file, const KnownPools& known) {
  Overrides out;
  out.freeze_all = file.freeze_all;
  out.freeze_reason = file.freeze_reason;
  for (const config::OverrideEntry& e : file.overrides) {
    if (auto bad = unknown_name(file, e.line, e.pool, e.isp, e.vmta, known)) return Error{*bad};
    Override o;
    o.pool = e.pool;
    o.isp = e.isp;
    o.vmta = e.vmta;
    o.value = static_cast<int>(e.max_smtp_out);
    switch (e.kind) {
      case config::OverrideKind::pin:
        o.kind = OverrideKind::pin;
        break;
      case config::OverrideKind::freeze:
        o.kind = OverrideKind::freeze;
        break;
      case config::OverrideKind::bounds:
        o.kind = OverrideKind::bounds;
        break;
    }
    if (e.floor) o.floor = static_cast<int>(*e.floor);
    if (e.ceiling) o.ceiling = static_cast<int>(*e.ceiling);
    o.until = e.until;
    o.reason = e.reason;
    o.line = static_cast<int>(e.line);
    out.entries.push_back(std::move(o));
  }
  for (const config::TierEntry& t : file.tiers) {
    if (auto bad = unknown_name(file, t.line, t.pool, t.isp, "", known)) return Error{*bad};
    out.tiers.push_back(
        TierOverride{t.pool, t.isp, *parse_tier(t.tier), t.source, static_cast<int>(t.line)});
  }
  return out;
}

Expected<Overrides> parse_checked_overrides(const std::string& text, const std::string& source,
                                            const KnownPools& known) {
  const config::OverrideLoad load = config::parse_overrides(text, source);
  if (!load.file) return Error{load.error};
  return checked_overrides(*load.file, known);
}

OverrideFile::OverrideFile(std::string path, KnownPools known)
    : path_(std::move(path)), known_(std::move(known)) {}

OverrideRead OverrideFile::read() {
  OverrideRead result;
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      result.overrides = Overrides{};  // no file: no overrides
      return result;
    }
    result.error = path_ + ": " + std::strerror(errno);
    return result;
  }
  Expected<FileStamp> before = stamp_of(fd, path_);
  std::string text;
  char buffer[8192];
  bool failed = !before;
  while (!failed) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      failed = true;
      break;
    }
    text.append(buffer, static_cast<std::size_t>(n));
  }
  Expected<FileStamp> after = stamp_of(fd, path_);
  ::close(fd);
  if (failed || !after) {
    result.error = path_ + ": cannot be read";
    return result;
  }
  // An editor still saving in place: act on the file once it holds still.
  if (!(*before == *after) || static_cast<off_t>(text.size()) != after->size) {
    result.error = path_ + ": changed while being read; read again next cycle";
    return result;
  }
  // Refused like a broken file, so the last valid overrides stay in force; checked once the file
  // is known to exist, since a missing one is no overrides.
  if (std::optional<std::string> why = config::why_unsafe(path_)) {
    result.error = *why;
    return result;
  }
  return parse(text);
}

OverrideRead OverrideFile::parse(const std::string& text) {
  OverrideRead result;
  Expected<Overrides> parsed = parse_checked_overrides(text, path_, known_);
  if (!parsed) {
    result.error = parsed.error().message;
    return result;
  }
  result.overrides = std::move(*parsed);
  result.text = text;
  return result;
}

}  // namespace sluice::adapters
