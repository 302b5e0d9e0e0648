// A full disk or a read-only fragment directory while a cut is written: no partial file, the
// previous fragment stays byte for byte, pmta is not called, the cycle fails with one line, the
// failure is recorded, and the change goes through once the disk is back. Each fault is made
// two ways: injected at the exact system call ($SLUICE_FAULT, test builds only), and for real
// on a small tmpfs mounted over the fragment directory (root only; skipped elsewhere).

#include <stdlib.h>

#include <string>
#include <vector>

#include "loop_support.h"

namespace sluice::e2e {
namespace {

const std::string kOperatorFragment = "# set by hand\nmax-smtp-out 6\nmax-connect-rate 1/s\n";

// A pool fragment at 6 and an hour with 10% throttling: the next cycle cuts 6 -> 4.
void prepare(const Sandbox& box) {
  fs::create_directories(box.fragment().parent_path());
  write_file(box.fragment(), kOperatorFragment);
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
}

void expect_clean_failure(const Sandbox& box, const ProcessResult& once,
                          const std::string& message) {
  EXPECT_EQ(once.exit_code, 1);
  const std::vector<std::string> err = lines_of(once.err);
  ASSERT_EQ(err.size(), 1u) << once.err;
  EXPECT_TRUE(contains(err[0], "not applied")) << err[0];
  EXPECT_TRUE(contains(err[0], message)) << err[0];
  EXPECT_TRUE(contains(err[0], box.fragment().string())) << err[0];
  EXPECT_EQ(slurp(box.fragment()), kOperatorFragment);
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(box.fragment().parent_path())) {
    entries.push_back(e.path().filename().string());
  }
  EXPECT_EQ(entries, std::vector<std::string>{"gmail.conf"});
  EXPECT_TRUE(box.calls().empty());
  const Json decisions = box.decisions(kNow);
  ASSERT_EQ(decisions.size(), 1u) << decisions.dump(2);
  EXPECT_EQ(decisions[0]["new_value"], 4);
  EXPECT_EQ(decisions[0]["applied"], false);
  EXPECT_TRUE(contains(decisions[0]["pmta"].get<std::string>(), message)) << decisions[0];
  EXPECT_EQ(box.json(kNow, "status")["pools"][0]["max_smtp_out"], 6);
}

// Once the disk is back, the same change goes out after the five-minute wait.
void expect_retry_applies(const Sandbox& box) {
  const ProcessResult retry = box.sluice(kNow + 6 * kMinute, {"once"});
  EXPECT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_TRUE(contains(slurp(box.fragment()), "\nmax-smtp-out 4\n"));
  EXPECT_EQ(box.calls(), (std::vector<std::string>{"test config", "reload"}));
}

struct InjectedCase {
  const char* fault;
  const char* message;
};

class InjectedDiskFaultE2E : public testing::TestWithParam<InjectedCase> {};

TEST_P(InjectedDiskFaultE2E, FailsTheCycleCleanlyAndKeepsThePreviousFragment) {
#ifndef SLUICE_FAULT_POINTS
  GTEST_SKIP() << "built without SLUICE_FAULT_POINTS";
#endif
  Sandbox box;
  prepare(box);
  ::setenv("SLUICE_FAULT", GetParam().fault, 1);
  const ProcessResult once = box.sluice(kNow, {"once"});
  ::unsetenv("SLUICE_FAULT");
  expect_clean_failure(box, once, GetParam().message);
  expect_retry_applies(box);
}

INSTANTIATE_TEST_SUITE_P(DiskFaultE2E, InjectedDiskFaultE2E,
                         testing::Values(InjectedCase{"write:1=ENOSPC", "No space left on device"},
                                         InjectedCase{"create:1=ENOSPC", "No space left on device"},
                                         InjectedCase{"create:1=EROFS", "Read-only file system"},
                                         InjectedCase{"write:1=EIO", "Input/output error"}));

// A tmpfs of a few pages over the fragment directory, unmounted at the end.
class SmallDisk {
 public:
  explicit SmallDisk(const fs::path& dir) : dir_(dir) {
    if (::geteuid() != 0) return;
    mounted_ = run_process({"/bin/mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs",
                            dir_.string()})
                   .exit_code == 0;
  }
  ~SmallDisk() {
    if (mounted_) run_process({"/bin/umount", "-l", dir_.string()});
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }
  bool remount(const char* options) {
    return run_process({"/bin/mount", "-o", std::string("remount,") + options, dir_.string()})
               .exit_code == 0;
  }

 private:
  fs::path dir_;
  bool mounted_ = false;
};

// Fills the file system of `dir` to the last byte.
void fill(const fs::path& file) {
  std::ofstream out(file, std::ios::binary);
  const std::string block(4096, 'x');
  while (out.write(block.data(), static_cast<std::streamsize>(block.size())) && out.flush()) {
  }
  std::ofstream tail(file.string() + ".tail", std::ios::binary);
  while (tail.put('x') && tail.flush()) {
  }
}

TEST(DiskFaultE2E, AFullFileSystemFailsTheCycleCleanly) {
  Sandbox box;
  SmallDisk disk(box.fragments());
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  prepare(box);
  const fs::path filler = box.fragments() / "filler";
  fill(filler);
  const ProcessResult once = box.sluice(kNow, {"once"});
  expect_clean_failure(box, once, "No space left on device");
  fs::remove(filler);
  fs::remove(filler.string() + ".tail");
  expect_retry_applies(box);
}

TEST(DiskFaultE2E, AReadOnlyFragmentDirectoryFailsTheCycleCleanly) {
  Sandbox box;
  SmallDisk disk(box.fragments());
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  prepare(box);
  ASSERT_TRUE(disk.remount("ro"));
  const ProcessResult once = box.sluice(kNow, {"once"});
  expect_clean_failure(box, once, "Read-only file system");
  ASSERT_TRUE(disk.remount("rw"));
  expect_retry_applies(box);
}

}  // namespace
}  // namespace sluice::e2e
