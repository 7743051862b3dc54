#include "report/metrics_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace relayban {
namespace {

bool NameChar(char c, bool first, bool colon) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}

}  // namespace

bool MetricsText::ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!NameChar(name[i], i == 0, true)) return false;
  return true;
}

bool MetricsText::ValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!NameChar(name[i], i == 0, false)) return false;
  return true;
}

std::string MetricsText::Escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string MetricsText::Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 9e15) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

void MetricsText::Family(std::string_view name, Type type, std::string_view help) {
  if (!ValidName(name)) throw std::invalid_argument("bad metric name: " + std::string(name));
  if (std::find(written_.begin(), written_.end(), name) != written_.end())
    throw std::invalid_argument("metric family written twice: " + std::string(name));
  written_.emplace_back(name);
  family_ = name;
  type_ = type;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  // HELP text escapes only \ and newline.
  for (char c : help) {
    if (c == '\\') out_ += "\\\\";
    else if (c == '\n') out_ += "\\n";
    else out_ += c;
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += type == Type::kCounter ? " counter\n" : type == Type::kGauge ? " gauge\n" : " histogram\n";
}

void MetricsText::Line(std::string_view suffix, const Labels& labels, double value) {
  if (family_.empty()) throw std::invalid_argument("a sample before its family");
  out_ += family_;
  out_ += suffix;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!ValidLabelName(k)) throw std::invalid_argument("bad label name: " + k);
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      out_ += Escape(v);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += Number(value);
  out_ += '\n';
}

void MetricsText::Sample(const Labels& labels, double value) {
  if (type_ == Type::kHistogram) throw std::invalid_argument("a plain sample in histogram " + family_);
  Line("", labels, value);
}

void MetricsText::Histogram(const Labels& labels, const std::vector<double>& bounds,
                            const std::vector<uint64_t>& bucket_counts, double sum) {
  if (type_ != Type::kHistogram) throw std::invalid_argument(family_ + " is not a histogram");
  if (bucket_counts.size() != bounds.size() + 1) throw std::invalid_argument("histogram buckets do not match bounds");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += bucket_counts[i];
    Labels l = labels;
    l.emplace_back("le", i < bounds.size() ? Number(bounds[i]) : "+Inf");
    Line("_bucket", l, static_cast<double>(cumulative));
  }
  Line("_sum", labels, sum);
  Line("_count", labels, static_cast<double>(cumulative));
}

}  // namespace relayban
