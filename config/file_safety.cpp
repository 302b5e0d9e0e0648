#include "config/file_safety.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace sluice::config {

namespace {

constexpr const char* kRefused = "; sluice refuses it because it steers PowerMTA's configuration: ";

std::string octal(mode_t mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%04o", static_cast<unsigned>(mode & 07777));
  return buffer;
}

bool writable_by_others(mode_t mode) {
  return (mode & (S_IWGRP | S_IWOTH)) != 0;
}

bool trusted_owner(uid_t owner) {
  return owner == 0 || owner == ::geteuid();
}

std::string owned_by(uid_t owner) {
  const uid_t self = ::geteuid();
  return "owned by uid " + std::to_string(owner) +
         (self == 0
              ? ", not by root"
              : ", not by root or uid " + std::to_string(self) + " (the user sluice runs as)");
}

std::optional<std::string> directory_problem(const std::string& path, const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return path + ": its directory " + dir + " cannot be checked: " + std::strerror(errno);
  }
  const std::string its = path + ": its directory " + dir + " is ";
  if (writable_by_others(st.st_mode) && (st.st_mode & S_ISVTX) == 0) {
    return its + "writable by group or others without the sticky bit (mode " + octal(st.st_mode) +
           "), so they could replace the file" + kRefused + "chmod go-w " + dir;
  }
  if (!trusted_owner(st.st_uid)) return its + owned_by(st.st_uid) + kRefused + "chown root " + dir;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> why_unsafe(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return path + ": cannot be checked: " + std::strerror(errno);
  }
  if (writable_by_others(st.st_mode)) {
    return path + ": writable by group or others (mode " + octal(st.st_mode) + ")" + kRefused +
           "chmod go-w " + path;
  }
  if (!trusted_owner(st.st_uid)) {
    return path + ": " + owned_by(st.st_uid) + kRefused + "chown root " + path;
  }
  const std::filesystem::path name(path);
  if (auto problem =
          directory_problem(path, name.has_parent_path() ? name.parent_path().string() : ".")) {
    return problem;
  }
  std::error_code error;
  const std::filesystem::path target = std::filesystem::canonical(name, error);
  if (error) return path + ": cannot be checked: " + error.message();
  return directory_problem(path, target.parent_path().string());
}

}  // namespace sluice::config
