#include "adapters/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

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

}  // namespace

Status write_file_atomically(const std::string& path, std::string_view content, int mode) {
  std::string temp_template = path + ".tmp-XXXXXX";
  std::vector<char> temp(temp_template.begin(), temp_template.end());
  temp.push_back('\0');
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
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
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    const std::string message = describe(path, "cannot rename into place");
    ::unlink(temp_path.c_str());
    return Error{message};
  }
  const std::string dir = directory_of(path);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Error{describe(dir, "cannot open the directory to fsync it")};
  const int rc = ::fsync(dir_fd);
  ::close(dir_fd);
  if (rc != 0) return Error{describe(dir, "cannot fsync the directory")};
  return ok_status();
}

}  // namespace sluice::adapters
