#include "adapters/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "controller/fault_point.h"

namespace sluice::adapters {

namespace {

std::string describe(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status write_all(int fd, std::string_view content, const std::string& path) {
  if (const int injected = fault_point("write"); injected != 0) {
    errno = injected;
    return Error{describe(path, "cannot write")};
  }
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{describe(path, "cannot write")};
    }
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok_status();
}

// A temporary file is the target's name, this marker and mkostemp's six characters.
constexpr std::string_view kTempMarker = ".tmp-";

}  // namespace

void remove_abandoned_temporaries(const std::string& path) {
  const std::string dir = directory_of(path);
  const auto slash = path.rfind('/');
  const std::string prefix =
      path.substr(slash == std::string::npos ? 0 : slash + 1) + std::string(kTempMarker);
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return;
  while (const dirent* entry = ::readdir(listing)) {
    const std::string_view name = entry->d_name;
    if (name.size() == prefix.size() + 6 && name.starts_with(prefix)) {
      ::unlinkat(::dirfd(listing), entry->d_name, 0);
    }
  }
  ::closedir(listing);
}

Status write_file_atomically(const std::string& path, std::string_view content, int mode) {
  remove_abandoned_temporaries(path);
  std::string temp_template = path + std::string(kTempMarker) + "XXXXXX";
  std::vector<char> temp(temp_template.begin(), temp_template.end());
  temp.push_back('\0');
  int fd = -1;
  if (const int injected = fault_point("create"); injected != 0) {
    errno = injected;
  } else {
    fd = ::mkostemp(temp.data(), O_CLOEXEC);
  }
  if (fd < 0) return Error{describe(path, "cannot create a temporary file beside it")};
  const std::string temp_path(temp.data());
  auto abandon = [&](std::string message) {
    ::close(fd);
    ::unlink(temp_path.c_str());
    return Status(Error{std::move(message)});
  };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return abandon(describe(path, "cannot chmod"));
  if (Status s = write_all(fd, content, path); !s) return abandon(s.error().message);
  if (::fsync(fd) != 0) return abandon(describe(path, "cannot fsync"));
  if (::close(fd) != 0) {
    ::unlink(temp_path.c_str());
    return Error{describe(path, "cannot close")};
  }
  fault_point("before-rename");
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    const std::string message = describe(path, "cannot rename into place");
    ::unlink(temp_path.c_str());
    return Error{message};
  }
  fault_point("after-rename");
  const std::string dir = directory_of(path);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Error{describe(dir, "cannot open the directory to fsync it")};
  const int rc = ::fsync(dir_fd);
  ::close(dir_fd);
  if (rc != 0) return Error{describe(dir, "cannot fsync the directory")};
  return ok_status();
}

}  // namespace sluice::adapters
