#include "relayban/source/journal_source.hpp"

#include <systemd/sd-journal.h>

#include <cstring>
#include <ctime>

namespace relayban {
namespace {

std::string_view Field(sd_journal* j, const char* name) {
  const void* data = nullptr;
  size_t len = 0;
  if (sd_journal_get_data(j, name, &data, &len) < 0) return {};
  std::string_view v(static_cast<const char*>(data), len);
  size_t eq = v.find('=');
  return eq == std::string_view::npos ? std::string_view{} : v.substr(eq + 1);
}

}  // namespace

JournalSource::~JournalSource() {
  if (j_) sd_journal_close(j_);
}

Result<std::unique_ptr<JournalSource>> JournalSource::Open(const std::vector<std::string>& matches, const std::string& directory) {
  sd_journal* j = nullptr;
  int rc = directory.empty() ? sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM)
                             : sd_journal_open_directory(&j, directory.c_str(), 0);
  if (rc < 0) return Fail("cannot open the journal" + (directory.empty() ? std::string() : " in " + directory) + ": " + std::strerror(-rc));
  std::string name = "journal:";
  // Matches on one field are ORed by sd-journal, matches on different fields ANDed.
  for (const auto& m : matches) {
    if (sd_journal_add_match(j, m.data(), m.size()) < 0) {
      sd_journal_close(j);
      return Fail("bad journal match '" + m + "'");
    }
    name += (name.size() > 8 ? "," : "") + m;
  }
  if (!directory.empty()) name += "@" + directory;
  return std::unique_ptr<JournalSource>(new JournalSource(j, name));
}

int JournalSource::fd() const { return sd_journal_get_fd(j_); }

void JournalSource::Start(const std::optional<std::string>& cursor) {
  if (cursor && sd_journal_seek_cursor(j_, cursor->c_str()) >= 0) {
    // Seeking puts us on the entry with that cursor: step past it, it was read already.
    if (sd_journal_next(j_) > 0 && sd_journal_test_cursor(j_, cursor->c_str()) <= 0) sd_journal_previous(j_);
    cursor_ = *cursor;
    return;
  }
  // First start: old entries are history. Stand on the last one, so reading goes on after
  // it; with no entry yet, read from the head whatever arrives (a lazily evaluated "tail"
  // would skip entries written between now and the first read).
  sd_journal_seek_tail(j_);
  if (sd_journal_previous(j_) > 0) {
    char* c = nullptr;
    if (sd_journal_get_cursor(j_, &c) >= 0) {
      cursor_ = c;
      free(c);
    }
  } else {
    sd_journal_seek_head(j_);
  }
}

size_t JournalSource::Poll(const std::function<void(std::string_view)>& on_line, size_t max_lines,
                           const std::function<bool()>& stop) {
  sd_journal_process(j_);
  size_t n = 0;
  more_ = false;
  for (;;) {
    if (n >= max_lines || (n > 0 && n % 64 == 0 && stop && stop())) {
      more_ = true;
      break;
    }
    if (sd_journal_next(j_) <= 0) break;
    uint64_t usec = 0;
    sd_journal_get_realtime_usec(j_, &usec);
    time_t secs = static_cast<time_t>(usec / 1000000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char stamp[96];  // room for any year gmtime_r can give
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(usec % 1000000));
    std::string_view host = Field(j_, "_HOSTNAME");
    std::string_view ident = Field(j_, "SYSLOG_IDENTIFIER");
    if (ident.empty()) ident = Field(j_, "_COMM");
    std::string_view pid = Field(j_, "_PID");
    line_.assign(stamp);
    line_ += ' ';
    line_.append(host.empty() ? std::string_view("localhost") : host);
    line_ += ' ';
    line_.append(ident);
    if (!pid.empty()) {
      line_ += '[';
      line_.append(pid);
      line_ += ']';
    }
    line_ += ": ";
    line_.append(Field(j_, "MESSAGE"));
    on_line(line_);
    ++n;
    char* c = nullptr;
    if (sd_journal_get_cursor(j_, &c) >= 0) {
      cursor_ = c;
      free(c);
    }
  }
  return n;
}

}  // namespace relayban
