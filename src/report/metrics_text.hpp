// The Prometheus text exposition format (0.0.4), written by hand: the daemon renders its
// counters through this for the textfile collector, its HTTP listener and `relayban metrics`.
// Pure: names are checked, label values escaped, each family written as one block.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relayban {

// The media type an HTTP answer carrying this text declares.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

class MetricsText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  enum class Type : uint8_t { kCounter, kGauge, kHistogram };

  // Starts a family: its HELP and TYPE lines. A name that breaks Prometheus' rules, or one
  // already written, is a programming error: it throws std::invalid_argument.
  void Family(std::string_view name, Type type, std::string_view help);
  // A sample of the current family (counters and gauges).
  void Sample(const Labels& labels, double value);
  void Sample(double value) { Sample(Labels{}, value); }
  // A histogram of the current family: cumulative counts per upper bound, +Inf, sum, count.
  // `bucket_counts` holds one count per bound (not cumulative) and the count above the last.
  void Histogram(const Labels& labels, const std::vector<double>& bounds, const std::vector<uint64_t>& bucket_counts,
                 double sum);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

  static bool ValidName(std::string_view name);
  static bool ValidLabelName(std::string_view name);
  // A label value with \ " and newline escaped.
  static std::string Escape(std::string_view value);
  // A sample value: integers without a fraction, +Inf/-Inf/NaN spelled as Prometheus does.
  static std::string Number(double v);

 private:
  void Line(std::string_view suffix, const Labels& labels, double value);
  std::string out_;
  std::string family_;
  Type type_ = Type::kGauge;
  std::vector<std::string> written_;
};

}  // namespace relayban
