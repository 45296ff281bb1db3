// Plain-text output: column-aligned tables and "Key: value" blocks.
//
//   Table t({"ID", "NAME", "SIZE"});
//   t.AddRow({"3f…", "vol1", "10 GiB"});
//   out << t.Render();
//   // ID   NAME  SIZE
//   // 3f…  vol1  10 GiB
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cairn::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  // Missing cells are empty; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }
  // Columns separated by two spaces, padded to the widest cell (UTF-8
  // aware); the last column is not padded; every line ends with '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "Key:   value" lines with the values aligned.
class KeyValues {
 public:
  void Add(std::string key, std::string value) {
    items_.emplace_back(std::move(key), std::move(value));
  }
  std::string Render() const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// 1536 KiB -> "1.5 MiB"; 0 -> "0 B".
std::string HumanKib(uint64_t kib);
// 10 -> "10 GiB".
std::string HumanGib(uint64_t gib);

// Display width of a UTF-8 string (code points; good enough for tables).
size_t DisplayWidth(const std::string& s);

}  // namespace cairn::ctl
