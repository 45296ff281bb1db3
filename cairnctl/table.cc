// Tables and key/value blocks.
#include "cairnctl/table.h"

#include <algorithm>
#include <cstdio>

namespace cairn::ctl {

size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;  // count lead bytes only
  }
  return n;
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> width(headers_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
  };
  measure(headers_);
  for (const auto& r : rows_) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& row) {
    std::string l;
    for (size_t i = 0; i < row.size(); ++i) {
      l += row[i];
      if (i + 1 < row.size()) l += std::string(width[i] - DisplayWidth(row[i]) + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(headers_);
  for (const auto& r : rows_) line(r);
  return out;
}

std::string KeyValues::Render() const {
  size_t w = 0;
  for (const auto& [k, v] : items_) w = std::max(w, DisplayWidth(k) + 1);
  std::string out;
  for (const auto& [k, v] : items_) {
    std::string l = k + ":" + std::string(w - DisplayWidth(k) - 1 + 2, ' ') + v;
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  }
  return out;
}

std::string HumanKib(uint64_t kib) {
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (kib == 0) return "0 B";
  double v = static_cast<double>(kib);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (v == static_cast<double>(static_cast<uint64_t>(v))) {
    std::snprintf(buf, sizeof(buf), "%llu %s", static_cast<unsigned long long>(v), units[u]);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string HumanGib(uint64_t gib) { return std::to_string(gib) + " GiB"; }

}  // namespace cairn::ctl
