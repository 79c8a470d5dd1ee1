// Test helpers for store/note: reading the shared vectors in
// $JITGATE_TESTDATA/note. Test-only.
#ifndef JITGATE_STORE_NOTE_NOTE_TEST_UTIL_H_
#define JITGATE_STORE_NOTE_NOTE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "core/base/bytes.h"

namespace jitgate::note::testing {

// NoteTestdataDir returns $JITGATE_TESTDATA/note, or "" (with a test failure)
// if the variable is unset.
inline std::string NoteTestdataDir() {
  const char* dir = std::getenv("JITGATE_TESTDATA");
  if (dir == nullptr || *dir == '\0') {
    ADD_FAILURE() << "JITGATE_TESTDATA is not set";
    return "";
  }
  return std::string(dir) + "/note";
}

// ReadNoteFile returns the bytes of $JITGATE_TESTDATA/note/<name>; a missing
// or empty file is a test failure, never a silent skip.
inline std::string ReadNoteFile(const std::string& name) {
  const std::string path = NoteTestdataDir() + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read test vector " << path;
    return "";
  }
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.empty()) ADD_FAILURE() << "test vector " << path << " is empty";
  return data;
}

inline Bytes MustHex(const std::string& hex) {
  Bytes out;
  if (!HexDecode(hex, &out)) ADD_FAILURE() << "bad hex in test: " << hex;
  return out;
}

}  // namespace jitgate::note::testing

#endif  // JITGATE_STORE_NOTE_NOTE_TEST_UTIL_H_
