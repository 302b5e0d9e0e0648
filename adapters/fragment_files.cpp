#include "adapters/fragment_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "adapters/atomic_file.h"

namespace sluice::adapters {

namespace {

std::string describe(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

// The name as it may appear in a one-line message: quoted, control bytes escaped.
std::string quoted(const std::string& name) {
  std::string text = "\"";
  for (const unsigned char c : name) {
    if (c == '"' || c == '\\') {
      text += '\\';
      text += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      text += escaped;
    } else {
      text += static_cast<char>(c);
    }
  }
  return text + "\"";
}

bool is_valid_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status check_name(const char* what, const std::string& name) {
  if (is_valid_name(name)) return ok_status();
  return Error{std::string("invalid ") + what + " name " + quoted(name) +
               ": use letters, digits, '.', '_' and '-' only (not \".\" or \"..\")"};
}

Expected<std::string> real_path(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr),
                                                       &std::free);
  if (!resolved) return Error{describe(path, "cannot resolve")};
  return std::string(resolved.get());
}

// A symbolic link is fine as long as it stays inside the fragment directory; anything else that
// is missing or not a link is left to the operation itself to judge.
Status check_not_escaping(const std::string& path, const std::string& dir) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return ok_status();
    return Error{describe(path, "cannot stat")};
  }
  if (!S_ISLNK(st.st_mode)) return ok_status();
  const Expected<std::string> root = real_path(dir);
  if (!root) return root.error();
  const Expected<std::string> target = real_path(path);
  if (!target) return target.error();
  const std::string& base = root.value();
  const bool inside =
      target.value() == base || (target.value().starts_with(base) &&
                                 (base.ends_with('/') || target.value()[base.size()] == '/'));
  if (inside) return ok_status();
  return Error{path + ": a symbolic link leading outside " + dir + " (to " + target.value() +
               "), refused"};
}

// Makes a change to the directory's entries (a new file, a removal) survive a crash.
Status fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{describe(dir, "cannot open the directory to fsync it")};
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Error{describe(dir, "cannot fsync the directory")};
  return ok_status();
}

}  // namespace

FragmentFiles::FragmentFiles(std::string dir) : dir_(std::move(dir)) {
  // One form of the root, so that joined paths and messages never show "//".
  while (dir_.size() > 1 && dir_.ends_with('/')) dir_.pop_back();
}

std::vector<std::string> FragmentFiles::directories(const FragmentKey& key) const {
  std::vector<std::string> dirs{dir_ + "/" + key.pool};
  if (!key.vmta.empty()) dirs.push_back(dirs.back() + "/" + key.isp);
  return dirs;
}

std::string FragmentFiles::path(const FragmentKey& key) const {
  return directories(key).back() + "/" + (key.vmta.empty() ? key.isp : key.vmta) + ".conf";
}

Expected<std::string> FragmentFiles::checked_path(const FragmentKey& key) const {
  if (!dir_.starts_with('/')) {
    return Error{"fragment directory " + quoted(dir_) + " is not an absolute path"};
  }
  if (Status s = check_name("pool", key.pool); !s) return s.error();
  if (Status s = check_name("ISP", key.isp); !s) return s.error();
  if (!key.vmta.empty()) {
    if (Status s = check_name("VMTA", key.vmta); !s) return s.error();
  }
  for (const std::string& dir : directories(key)) {
    if (Status s = check_not_escaping(dir, dir_); !s) return s.error();
  }
  const std::string file = path(key);
  if (Status s = check_not_escaping(file, dir_); !s) return s.error();
  return file;
}

Expected<std::optional<std::string>> FragmentFiles::read(const FragmentKey& key) {
  const Expected<std::string> checked = checked_path(key);
  if (!checked) return checked.error();
  const std::string& file = checked.value();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Error{describe(file, "cannot open")};
  }
  std::string content;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string message = describe(file, "cannot read");
      ::close(fd);
      return Error{message};
    }
    content.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(content));
}

Status FragmentFiles::write(const FragmentKey& key, const std::optional<std::string>& content) {
  const Expected<std::string> checked = checked_path(key);
  if (!checked) return checked.error();
  const std::string& file = checked.value();
  const std::vector<std::string> dirs = directories(key);
  if (!content) {
    remove_abandoned_temporaries(file);
    if (::unlink(file.c_str()) != 0) {
      if (errno == ENOENT) return ok_status();
      return Error{describe(file, "cannot remove")};
    }
    return fsync_directory(dirs.back());
  }
  std::string parent = dir_;
  for (const std::string& dir : dirs) {
    if (::mkdir(dir.c_str(), 0755) == 0) {
      // The umask may have narrowed the mode; PowerMTA must be able to read the directory.
      if (::chmod(dir.c_str(), 0755) != 0) return Error{describe(dir, "cannot chmod")};
      if (Status s = fsync_directory(parent); !s) return s;
    } else if (errno != EEXIST) {
      return Error{describe(dir, "cannot create the directory")};
    }
    parent = dir;
  }
  return write_file_atomically(file, *content, 0644);
}

}  // namespace sluice::adapters
