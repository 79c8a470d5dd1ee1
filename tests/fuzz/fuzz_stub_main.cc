// A main() for fuzz targets built without libFuzzer: runs
// LLVMFuzzerTestOneInput once on every file named on the command line (or
// found in a named directory), so that ctest replays each corpus as a
// regression suite. Exits non-zero if a path cannot be read or no input ran.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool RunFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz stub: cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int ran = 0;
  for (int i = 1; i < argc; ++i) {
    std::string path = argv[i];
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      std::fprintf(stderr, "fuzz stub: %s does not exist\n", path.c_str());
      return 1;
    }
    if (S_ISDIR(st.st_mode)) {
      std::vector<std::string> names;
      if (DIR* d = opendir(path.c_str())) {
        while (dirent* e = readdir(d)) {
          if (e->d_name[0] != '.') names.push_back(path + "/" + e->d_name);
        }
        closedir(d);
      }
      for (const auto& n : names) {
        if (!RunFile(n)) return 1;
        ++ran;
      }
    } else {
      if (!RunFile(path)) return 1;
      ++ran;
    }
  }
  std::printf("fuzz stub: %d inputs ran without a crash\n", ran);
  return ran > 0 ? 0 : 1;
}
