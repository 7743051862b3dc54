// The Prometheus text writer: names checked, label values escaped, histograms cumulative.
#include "report/metrics_text.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>

using namespace relayban;

TEST_CASE("a family is written with HELP and TYPE, then its samples with labels") {
  MetricsText m;
  m.Family("relayban_bans_total", MetricsText::Type::kCounter, "Bans decided");
  m.Sample({{"jail", "postfix"}, {"rule", "auth-bruteforce"}}, 3);
  m.Sample({{"jail", "dovecot"}, {"rule", "auth-bruteforce"}}, 0);
  CHECK(m.text() ==
        "# HELP relayban_bans_total Bans decided\n"
        "# TYPE relayban_bans_total counter\n"
        "relayban_bans_total{jail=\"postfix\",rule=\"auth-bruteforce\"} 3\n"
        "relayban_bans_total{jail=\"dovecot\",rule=\"auth-bruteforce\"} 0\n");
}

TEST_CASE("label values escape backslash, quote and newline, so a log path cannot forge a sample") {
  MetricsText m;
  m.Family("relayban_log_lines_read_total", MetricsText::Type::kCounter, "Lines\nread \\ here");
  m.Sample({{"log", "/var/log/a\"} 99\nrelayban_x 1\\"}}, 7);
  CHECK(m.text() ==
        "# HELP relayban_log_lines_read_total Lines\\nread \\\\ here\n"
        "# TYPE relayban_log_lines_read_total counter\n"
        "relayban_log_lines_read_total{log=\"/var/log/a\\\"} 99\\nrelayban_x 1\\\\\"} 7\n");
}

TEST_CASE("bad metric and label names, a family written twice and a sample without a family are refused") {
  MetricsText m;
  CHECK_THROWS_AS(m.Sample(1), std::invalid_argument);
  CHECK_THROWS_AS(m.Family("1relayban", MetricsText::Type::kGauge, ""), std::invalid_argument);
  CHECK_THROWS_AS(m.Family("relay-ban", MetricsText::Type::kGauge, ""), std::invalid_argument);
  m.Family("relayban_up", MetricsText::Type::kGauge, "");
  CHECK_THROWS_AS(m.Sample({{"bad-label", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(m.Sample({{"__reserved", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(m.Family("relayban_up", MetricsText::Type::kGauge, ""), std::invalid_argument);
  CHECK(MetricsText::ValidName("relayban:rate_5m"));
  CHECK_FALSE(MetricsText::ValidLabelName("a:b"));
}

TEST_CASE("a histogram's buckets are cumulative and end with +Inf, _sum and _count") {
  MetricsText m;
  m.Family("relayban_hook_duration_seconds", MetricsText::Type::kHistogram, "Run time");
  m.Histogram({}, {0.1, 1}, {2, 3, 1}, 4.5);
  CHECK(m.text() ==
        "# HELP relayban_hook_duration_seconds Run time\n"
        "# TYPE relayban_hook_duration_seconds histogram\n"
        "relayban_hook_duration_seconds_bucket{le=\"0.1\"} 2\n"
        "relayban_hook_duration_seconds_bucket{le=\"1\"} 5\n"
        "relayban_hook_duration_seconds_bucket{le=\"+Inf\"} 6\n"
        "relayban_hook_duration_seconds_sum 4.5\n"
        "relayban_hook_duration_seconds_count 6\n");
  CHECK_THROWS_AS(m.Histogram({}, {0.1}, {1}, 0), std::invalid_argument);
  CHECK_THROWS_AS(m.Sample(1), std::invalid_argument);
}

TEST_CASE("numbers: whole values without a fraction, large counters exact, fractions short") {
  CHECK(MetricsText::Number(0) == "0");
  CHECK(MetricsText::Number(1234567890123) == "1234567890123");
  CHECK(MetricsText::Number(0.005) == "0.005");
  CHECK(MetricsText::Number(1.0 / 0.0) == "+Inf");
  CHECK(MetricsText::Number(-1.0 / 0.0) == "-Inf");
}
