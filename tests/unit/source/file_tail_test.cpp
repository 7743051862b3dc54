// FileTail on real files: growth, partial lines, every kind of rotation, restarts.
#include "relayban/source/file_tail.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace relayban;

namespace {
struct Dir {
  std::filesystem::path p = std::filesystem::temp_directory_path() / ("relayban-tail-" + std::to_string(getpid()));
  Dir() {
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
  }
  ~Dir() { std::filesystem::remove_all(p); }
  std::string log() const { return (p / "mail.log").string(); }
};
void Append(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::app) << text; }
std::vector<std::string> Poll(FileTail& t) {
  std::vector<std::string> out;
  t.Poll([&](std::string_view l) { out.emplace_back(l); });
  return out;
}
}  // namespace

TEST_CASE("a new tail starts at the end of an existing file and hands out complete lines only") {
  Dir d;
  Append(d.log(), "old history\n");
  FileTail t(d.log(), 1000);
  t.Start(std::nullopt);
  CHECK(Poll(t).empty());
  Append(d.log(), "one\ntw");
  CHECK(Poll(t) == std::vector<std::string>{"one"});
  Append(d.log(), "o\n");
  CHECK(Poll(t) == std::vector<std::string>{"two"});
}

TEST_CASE("rename and create: the rest of the old file, then the new one from its start") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 1000);
  t.Start(std::nullopt);
  Append(d.log(), "a\n");
  std::filesystem::rename(d.log(), d.log() + ".1");
  Append(d.log() + ".1", "b\n");  // written by the daemon before it reopened
  Append(d.log(), "c\n");
  CHECK(Poll(t) == std::vector<std::string>{"a", "b", "c"});
  Append(d.log(), "d\n");
  CHECK(Poll(t) == std::vector<std::string>{"d"});
}

TEST_CASE("copytruncate: the file is emptied and written again from the start") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 1000);
  t.Start(std::nullopt);
  Append(d.log(), "a long line before the truncation\n");
  CHECK(Poll(t).size() == 1);
  std::filesystem::resize_file(d.log(), 0);
  Append(d.log(), "b\n");
  CHECK(Poll(t) == std::vector<std::string>{"b"});
}

TEST_CASE("delete and recreate, and a file that does not exist yet") {
  Dir d;
  FileTail t(d.log(), 1000);
  t.Start(std::nullopt);
  CHECK_FALSE(t.is_open());
  CHECK(Poll(t).empty());
  Append(d.log(), "first\n");
  CHECK(Poll(t) == std::vector<std::string>{"first"});  // a new file is read from its start
  std::filesystem::remove(d.log());
  CHECK(Poll(t).empty());
  Append(d.log(), "again\n");
  CHECK(Poll(t) == std::vector<std::string>{"again"});
}

TEST_CASE("a restart resumes at the saved position, a file rotated meanwhile is read from its start") {
  Dir d;
  Append(d.log(), "");
  FilePosition pos;
  {
    FileTail t(d.log(), 1000);
    t.Start(std::nullopt);
    Append(d.log(), "1\n2\n3");
    CHECK(Poll(t) == std::vector<std::string>{"1", "2"});
    pos = t.Position();
    CHECK(pos.offset == 4);  // after "2\n": the partial "3" is read again next time
  }
  Append(d.log(), "\n4\n");
  {
    FileTail t(d.log(), 1000);
    t.Start(pos);
    CHECK(Poll(t) == std::vector<std::string>{"3", "4"});
    pos = t.Position();
  }
  std::filesystem::rename(d.log(), d.log() + ".1");
  Append(d.log(), "new\n");
  FileTail t(d.log(), 1000);
  t.Start(pos);
  CHECK(Poll(t) == std::vector<std::string>{"new"});
}

TEST_CASE("an overlong line is cut once and the rest of it dropped") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 100);
  t.Start(std::nullopt);
  Append(d.log(), std::string(100000, 'x') + "\nshort\n");
  auto lines = Poll(t);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].size() == 101);
  CHECK(lines[1] == "short");
}
