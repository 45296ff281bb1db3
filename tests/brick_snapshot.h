// What a brick holds, read straight from its directory on disk (not through
// brickd), to check that replicas are identical after heal: names, types,
// sizes, contents (SHA-256, holes and zeros alike), mode, owner, mtime,
// symlink targets, device numbers, hard links, and the xattrs that matter
// (user.*, trusted.cairn.id/ver/layout/linkto). `.cairn/` is skipped.
//
//   BrickSnapshot a = TakeBrickSnapshot(path_a), b = TakeBrickSnapshot(path_b);
//   EXPECT_EQ(DiffBrickSnapshots(a, b), "");
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace cairn::test {

struct BrickObject {
  char type = '?';  // f d l p s c b
  uint64_t size = 0;
  uint64_t blocks = 0;
  std::string digest;  // regular files: contents (zeros and holes alike)
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t mtime_ns = 0;
  uint64_t nlink = 0;  // without the brick's index link
  std::string target;  // symlinks
  uint64_t rdev = 0;
  std::map<std::string, std::string> xattrs;
  std::string links;  // every path of this inode (hard links), sorted, ';'-joined
  uint64_t ino = 0;
};

// Path relative to the brick root → object.
using BrickSnapshot = std::map<std::string, BrickObject>;

BrickSnapshot TakeBrickSnapshot(const std::string& brick_root);

// One line describing an object (for failure messages).
std::string DescribeBrickObject(const BrickObject& o);

// The differences between two bricks' trees, "" if none. data=false: one of
// them is an arbiter, whose files hold no data (sizes and contents, and the
// mtimes of files, are not compared). Times may differ by `mtime_slack_ns`:
// replicas apply one mutation on their own clocks.
std::string DiffBrickSnapshots(const BrickSnapshot& a, const BrickSnapshot& b, bool data = true,
                               int64_t mtime_slack_ns = 1000000000);

}  // namespace cairn::test
