// FileTail on real files: growth, partial lines, every kind of rotation, restarts.
#include "relayban/source/file_tail.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
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
  t.Start({});
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
  t.Start({});
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
  t.Start({});
  Append(d.log(), "a long line before the truncation\n");
  CHECK(Poll(t).size() == 1);
  std::filesystem::resize_file(d.log(), 0);
  Append(d.log(), "b\n");
  CHECK(Poll(t) == std::vector<std::string>{"b"});
}

TEST_CASE("delete and recreate, and a file that does not exist yet") {
  Dir d;
  FileTail t(d.log(), 1000);
  t.Start({});
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
  std::vector<FilePosition> pos;
  {
    FileTail t(d.log(), 1000);
    t.Start({});
    Append(d.log(), "1\n2\n3");
    CHECK(Poll(t) == std::vector<std::string>{"1", "2"});
    pos = t.Positions();
    REQUIRE(pos.size() == 1);
    CHECK(pos[0].offset == 4);  // after "2\n": the partial "3" is read again next time
  }
  Append(d.log(), "\n4\n");
  {
    FileTail t(d.log(), 1000);
    t.Start(pos);
    CHECK(Poll(t) == std::vector<std::string>{"3", "4"});
    pos = t.Positions();
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
  t.Start({});
  Append(d.log(), std::string(100000, 'x') + "\nshort\n");
  auto lines = Poll(t);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].size() == 101);
  CHECK(lines[1] == "short");
}

namespace {
std::vector<std::string> Numbered(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back("line " + std::to_string(i));
  return out;
}
void AppendLines(const std::string& path, int from, int to) {
  std::string text;
  for (const auto& l : Numbered(from, to)) text += l + "\n";
  Append(path, text);
}
}  // namespace

TEST_CASE("rename rotation every 10 lines, faster than the reader: every generation is read, in order, once") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 1000);
  t.Start({});
  for (int gen = 0; gen < 30; ++gen) {
    AppendLines(d.log(), gen * 10, gen * 10 + 10);
    std::filesystem::rename(d.log(), d.log() + ".1");  // replaces the previous .1: gone unless held
    Append(d.log(), "");
    t.OnNewFile();  // what inotify's IN_CREATE makes the source set do
  }
  CHECK(t.generations() == 31);  // each held open, though replaced under its name
  std::vector<std::string> got;
  for (int i = 0; i < 10; ++i)
    for (auto& l : Poll(t)) got.push_back(l);
  CHECK(got == Numbered(0, 300));
  CHECK(t.generations() <= 2);  // the last full one stays open until the writer moves on
}

TEST_CASE("more unread generations than descriptors allow: the oldest are closed, counted, and the rest read in order") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 1000);
  t.Start({});
  const int gens = 300;  // above the cap of 256 open generations
  for (int gen = 0; gen < gens; ++gen) {
    AppendLines(d.log(), gen * 2, gen * 2 + 2);
    std::filesystem::rename(d.log(), d.log() + ".1");
    Append(d.log(), "");
    t.OnNewFile();
  }
  CHECK(t.generations() == 256);
  CHECK(t.dropped() == gens + 1 - 256);
  std::vector<std::string> got;
  for (int i = 0; i < 50; ++i)
    for (auto& l : Poll(t)) got.push_back(l);
  // The file open at start took the first two lines; 45 generations went, the newest is empty.
  CHECK(got == Numbered(2 * (gens + 1 - 256), 2 * gens));
}

TEST_CASE("delete and recreate every 10 lines: every generation is read once") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 1000);
  t.Start({});
  for (int gen = 0; gen < 10; ++gen) {
    AppendLines(d.log(), gen * 10, gen * 10 + 10);
    std::filesystem::remove(d.log());
    Append(d.log(), "");
    t.OnNewFile();
  }
  std::vector<std::string> got;
  for (int i = 0; i < 10; ++i)
    for (auto& l : Poll(t)) got.push_back(l);
  CHECK(got == Numbered(0, 100));
}

TEST_CASE("copytruncate with lines not read yet: they are read from the copy, then the file from its start") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 1000);
  t.Start({});
  std::vector<std::string> got;
  for (int gen = 0; gen < 20; ++gen) {
    AppendLines(d.log(), gen * 10, gen * 10 + 5);
    if (gen % 3 == 0)  // the reader keeps up only now and then
      for (auto& l : Poll(t)) got.push_back(l);
    AppendLines(d.log(), gen * 10 + 5, gen * 10 + 10);
    std::filesystem::copy_file(d.log(), d.log() + ".1", std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(d.log(), 0);
    for (auto& l : Poll(t)) got.push_back(l);  // the truncation is seen before the next copy
  }
  CHECK(got == Numbered(0, 200));
}

TEST_CASE("a poll stopped within a read, then a copytruncate: the copy is still recognised and read once") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 1000);
  t.Start({});
  AppendLines(d.log(), 0, 5000);  // several 64 KiB reads
  std::vector<std::string> got;
  int asked = 0;
  t.Poll([&](std::string_view l) { got.emplace_back(l); }, SIZE_MAX, [&] { return ++asked >= 2; });
  REQUIRE(got.size() == 2 * FileTail::kLinesPerLook);
  // The bytes that tell the copy are those up to the last line handed out, not the read's
  // end: the copy is found, and what was not read yet is read from it.
  std::filesystem::copy_file(d.log(), d.log() + ".1", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(d.log(), 0);
  AppendLines(d.log(), 5000, 5010);
  for (int k = 0; k < 1000 && got.size() < 5010; ++k)
    t.Poll([&](std::string_view l) { got.emplace_back(l); });
  CHECK(got == Numbered(0, 5010));
}

TEST_CASE("a restart finds the generation rotated away while it was down and reads its end first") {
  Dir d;
  Append(d.log(), "");
  std::vector<FilePosition> pos;
  {
    FileTail t(d.log(), 1000);
    t.Start({});
    Append(d.log(), "a\n");
    CHECK(Poll(t) == std::vector<std::string>{"a"});
    pos = t.Positions();
  }
  Append(d.log(), "b\n");  // written while the daemon was down...
  std::filesystem::rename(d.log(), d.log() + "-20261201");  // ...then rotated
  Append(d.log(), "c\n");
  FileTail t(d.log(), 1000);
  t.Start(pos);
  CHECK(t.generations() == 2);
  CHECK(Poll(t) == std::vector<std::string>{"b", "c"});
  auto now = t.Positions();
  REQUIRE(now.size() == 1);
  CHECK(now[0].offset == 2);
}

TEST_CASE("generations rotated away to names of their own before the reader looked are found and read") {
  Dir d;
  Append(d.log(), "");
  FileTail t(d.log(), 1000);
  t.Start({});
  // The writer outpaces the reader completely: no inotify event is seen before the end.
  for (int gen = 0; gen < 30; ++gen) {
    AppendLines(d.log(), gen * 10, gen * 10 + 10);
    std::filesystem::rename(d.log(), d.log() + "-2026120" + std::to_string(100 + gen));
    Append(d.log(), "");
  }
  AppendLines(d.log(), 300, 305);
  std::vector<std::string> got;
  for (int i = 0; i < 10; ++i)
    for (auto& l : Poll(t)) got.push_back(l);
  std::sort(got.begin(), got.end());
  auto want = Numbered(0, 305);
  std::sort(want.begin(), want.end());
  CHECK(got == want);
  // A copy an admin made beside it is not a rotation, and never read.
  Append(d.log() + ".bak", "line 999\n");
  Append(d.log(), "line 1000\n");
  CHECK(Poll(t) == std::vector<std::string>{"line 1000"});
}

TEST_CASE("multilog's current and its @...s files") {
  Dir d;
  std::string cur = (d.p / "current").string();
  Append(cur, "");
  FileTail t(cur, 1000);
  t.Start({});
  for (int gen = 0; gen < 5; ++gen) {
    AppendLines(cur, gen * 10, gen * 10 + 10);
    char name[40];
    std::snprintf(name, sizeof name, "@4000000069%014x.s", gen);
    std::filesystem::rename(cur, (d.p / name).string());
    Append(cur, "");
  }
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i)
    for (auto& l : Poll(t)) got.push_back(l);
  CHECK(got.size() == 50);
}

TEST_CASE("a poll stops early when told to, every few lines within a read, and goes on where it stopped") {
  Dir d;
  Append(d.log(), "");
  std::vector<FilePosition> pos;
  std::vector<std::string> got;
  {
    FileTail t(d.log(), 1000);
    t.Start({});
    AppendLines(d.log(), 0, 100000);  // about 1.1 MB
    int asked = 0;
    t.Poll([&](std::string_view l) { got.emplace_back(l); }, SIZE_MAX, [&] { return ++asked >= 3; });
    CHECK(t.more());
    // Asked after each kLinesPerLook lines, not only between 64 KiB reads.
    CHECK(asked == 3);
    CHECK(got.size() == 3 * FileTail::kLinesPerLook);
    // The saved position is just after the last line handed out.
    pos = t.Positions();
    REQUIRE(pos.size() == 1);
    size_t bytes = 0;
    for (const auto& l : got) bytes += l.size() + 1;
    CHECK(pos[0].offset == bytes);
    // The rest of that read is read again, once.
    t.Poll([&](std::string_view l) { got.emplace_back(l); }, 100);
    CHECK(got.size() == 3 * FileTail::kLinesPerLook + 100);
    while (t.more()) t.Poll([&](std::string_view l) { got.emplace_back(l); });
    CHECK(got == Numbered(0, 100000));
  }
  // A restart from a position saved mid-read goes on from the next line.
  FileTail t(d.log(), 1000);
  t.Start(pos);
  std::vector<std::string> rest;
  while (true) {
    size_t before = rest.size();
    t.Poll([&](std::string_view l) { rest.emplace_back(l); });
    if (rest.size() == before) break;
  }
  CHECK(rest == Numbered(3 * static_cast<int>(FileTail::kLinesPerLook), 100000));
}
